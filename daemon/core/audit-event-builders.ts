// Builders of audit records from the registry (audit-events.ts): the caller names the type and says who
// and what; the Event ID, action and outcome come from the type's entry, so a record cannot disagree
// with docs/audit-events.md. Where an entry allows several Event IDs or actions, the caller must choose.
import type { AuditEvent, AuditParticipant } from './audit.ts';
import { AuditEvents, type AuditEventSpec, type AuditEventType } from './audit-events.ts';

type Registry = typeof AuditEvents;

/** Optional when the entry allows one value (it is the default), required when it allows several. */
type Choice<K extends string, Options extends readonly unknown[]> = Options extends readonly [unknown]
  ? { readonly [P in K]?: Options[number] }
  : { readonly [P in K]: Options[number] };

export type AuditEventFields<T extends AuditEventType> = Omit<AuditEvent<T>, 'type' | 'eventId' | 'action' | 'outcome'> &
  Choice<'eventId', Registry[T]['eventIds']> &
  Choice<'action', Registry[T]['actions']>;

/** A record of `type` with the Event ID, action and outcome its registry entry gives it. */
export function auditEvent<T extends AuditEventType>(type: T, fields: AuditEventFields<T>): AuditEvent<T> {
  const spec: AuditEventSpec = AuditEvents[type];
  // Key order as the chain has always written it: eventId, type, action, outcome, then the rest.
  return { eventId: spec.eventIds[0], type, action: spec.actions[0], outcome: spec.outcome, ...fields } as AuditEvent<T>;
}

/** The types whose only Event ID is `Id`, and whose only action is E (execute). */
type ExecutedTypes<Id extends string> = {
  [K in AuditEventType]: Registry[K]['eventIds'] extends readonly [Id]
    ? Registry[K]['actions'] extends readonly ['E']
      ? K
      : never
    : never;
}[AuditEventType];
export type SecurityAlertType = ExecutedTypes<'SecurityAlert'>;
export type ApplicationActivityType = ExecutedTypes<'ApplicationActivity'>;

/** A Security Alert (110113) executed by or against the box: refusals, integrity alarms, their all-clears. */
export function securityAlert<T extends SecurityAlertType>(
  type: T,
  participants: readonly AuditParticipant[],
  detail: string,
  at = Date.now(),
): AuditEvent<T> {
  return auditEvent<SecurityAlertType>(type, { at, participants, detail }) as AuditEvent<T>;
}

/** An Application Activity (110100) of the box: start, stop, its own state changes. */
export function appActivity<T extends ApplicationActivityType>(
  type: T,
  participants: readonly AuditParticipant[],
  detail?: string,
  at = Date.now(),
): AuditEvent<T> {
  return auditEvent<ApplicationActivityType>(type, { at, participants, ...(detail === undefined ? {} : { detail }) }) as AuditEvent<T>;
}
