// The audit event registry and its builders. Half of what they promise is checked by the compiler:
// `npx tsc --noEmit -p tsconfig.json` covers this file, and each `@ts-expect-error` below fails the
// type check if the line under it ever compiles (an unknown type, or an ID/action/outcome the type's
// entry does not allow, accepted by a builder or by a sink).
import test from 'ava';
import type { AuditEvent, AuditSink } from './audit.ts';
import { appActivity, auditEvent, securityAlert } from './audit-event-builders.ts';
import { AuditEventId, AuditEventTypeCode, AuditEvents, type AuditEventSpec, auditEventSpec } from './audit-events.ts';

const box = { kind: 'system', id: 'edge-test', requestor: false } as const;

/** Never called: its body is here for the compiler only. */
export function recordsTheRegistryRejects(sink: AuditSink): void {
  // @ts-expect-error a type that is not in the registry
  sink.record(auditEvent('hl7.not-a-type', { at: 0, participants: [box] }));
  // @ts-expect-error a type that is not in the registry, written as a literal record
  sink.record({ eventId: 'SecurityAlert', type: 'hl7.not-a-type', action: 'E', outcome: 4, at: 0, participants: [box] });
  // @ts-expect-error the Event ID of another type
  sink.record({ eventId: 'Query', type: 'hl7.peer-refused', action: 'E', outcome: 4, at: 0, participants: [box] });
  // @ts-expect-error an outcome the registry does not give the type
  sink.record({ eventId: 'SecurityAlert', type: 'hl7.peer-refused', action: 'E', outcome: 0, at: 0, participants: [box] });
  // @ts-expect-error an action the registry does not give the type
  sink.record(auditEvent('outbox.dead-lettered', { eventId: 'ProcedureRecord', action: 'D', at: 0, participants: [box] }));
  // @ts-expect-error a type recorded under several Event IDs needs the caller to name one
  sink.record(auditEvent('outbox.dead-lettered', { at: 0, participants: [box] }));
  // @ts-expect-error not a Security Alert
  sink.record(securityAlert('application.start', [box], 'x'));
  // @ts-expect-error not an Application Activity
  sink.record(appActivity('hl7.peer-refused', [box]));
  // @ts-expect-error not a type
  const unknownType: AuditEvent['type'] = 'order.created';
  void unknownType;
}

test("a builder takes Event ID, action and outcome from the registry, in the chain's key order", (t) => {
  const e = auditEvent('audit.pruned', { at: 5, participants: [box], detail: 'd' });
  t.deepEqual(e, { eventId: 'AuditLogUsed', type: 'audit.pruned', action: 'D', outcome: 0, at: 5, participants: [box], detail: 'd' });
  t.deepEqual(Object.keys(e), ['eventId', 'type', 'action', 'outcome', 'at', 'participants', 'detail']);
  const chosen = auditEvent('outbox.dead-lettered', { eventId: 'DicomInstancesTransferred', at: 1, participants: [box] });
  t.deepEqual([chosen.eventId, chosen.action, chosen.outcome], ['DicomInstancesTransferred', 'E', 8]);
  t.deepEqual(Object.keys(chosen).slice(0, 4), ['eventId', 'type', 'action', 'outcome']);
});

test('securityAlert and appActivity give each type its registered outcome', (t) => {
  t.deepEqual(securityAlert('audit.chain-damaged', [box], 'x', 7), {
    eventId: 'SecurityAlert',
    type: 'audit.chain-damaged',
    action: 'E',
    outcome: 12,
    at: 7,
    participants: [box],
    detail: 'x',
  });
  t.is(securityAlert('audit.disk-budget-ok', [box], 'x').outcome, 0);
  t.is(securityAlert('hl7.peer-refused', [box], 'x').outcome, 4);
  t.deepEqual(appActivity('application.stop', [box], undefined, 3), {
    eventId: 'ApplicationActivity',
    type: 'application.stop',
    action: 'E',
    outcome: 0,
    at: 3,
    participants: [box],
  });
  t.is(appActivity('outbox.destination-down', [box], 'x').outcome, 4);
});

test('every registry entry is well formed', (t) => {
  for (const [type, spec] of Object.entries(AuditEvents) as [string, AuditEventSpec][]) {
    t.regex(type, /^[a-z0-9]+(?:-[a-z0-9]+)*\.[a-z0-9]+(?:-[a-z0-9]+)*$/, `${type}: area.kebab-case`);
    t.is(new Set(spec.eventIds).size, spec.eventIds.length, `${type}: Event IDs listed once`);
    t.is(new Set(spec.actions).size, spec.actions.length, `${type}: actions listed once`);
    for (const id of spec.eventIds) t.true(Object.hasOwn(AuditEventId, id), `${type}: ${id}`);
    if (spec.eventTypeCode !== undefined) t.true(Object.hasOwn(AuditEventTypeCode, spec.eventTypeCode), `${type}: ${spec.eventTypeCode}`);
    t.is(auditEventSpec(type), spec);
  }
});

test('a type the registry does not hold (an older record read back) has no entry', (t) => {
  t.is(auditEventSpec('order.created'), undefined);
  t.is(auditEventSpec('constructor'), undefined);
  t.is(auditEventSpec('__proto__'), undefined);
});
