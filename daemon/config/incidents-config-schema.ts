// Config of incident support (docs/incident-response.md): the alert rules the box runs over its own audit
// trail, with defaults that stay quiet on a normal department day. Part of the one schema
// (edge-config-schema.ts).
import { WorkingHours } from '../core/working-hours.ts';
import { boolean, integer, object, optional, string, withDefault } from './schema-kit.ts';

const minutes = (doc: string) => integer({ doc: `${doc} (minutes)`, min: 1, max: 1440 });
const count = (doc: string, max: number) => integer({ doc, min: 1, max });

function timeZoneProblem(value: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
    return undefined;
  } catch {
    return 'is not an IANA time zone (e.g. Europe/Berlin)';
  }
}

function workingHoursProblem(value: string): string | undefined {
  try {
    WorkingHours.parse(value);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export const incidentsSchema = object(
  {
    alerts: withDefault(boolean({ doc: 'run the alert rules over the audit trail as it is recorded' }), true),
    groupMinutes: withDefault(minutes('repeats of an open alert are recorded at most once per'), 15),
    learningDays: withDefault(
      integer({
        doc: 'days the rules that compare with a baseline (after hours, new HL7 types, k × baseline) only learn, from the first record',
        min: 0,
        max: 365,
      }),
      7,
    ),
    massAccess: withDefault(
      object(
        {
          distinctPatients: withDefault(
            count('alert when one peer or user touches more than this many distinct patients…', 1_000_000),
            200,
          ),
          windowMinutes: withDefault(minutes('…within this window'), 10),
          baselineFactor: withDefault(
            integer({ doc: 'also alert above this many times the subject’s usual daily peak (0 = off)', min: 0, max: 1000 }),
            5,
          ),
          baselineMinPatients: withDefault(
            count('the baseline alert needs at least this many distinct patients in the window', 1_000_000),
            40,
          ),
          baselineDays: withDefault(integer({ doc: 'days the baseline looks back', min: 3, max: 365 }), 30),
        },
        { doc: 'mass access: worklist answers, MPPS, images and views touching many patients' },
      ),
      {},
    ),
    afterHours: withDefault(
      object(
        {
          workingHours: optional(
            string({
              doc: 'the department’s working hours, e.g. "Mon-Fri 07:00-19:00, Sat 08:00-12:00"; omitted = no after-hours rule',
              maxLength: 200,
              check: workingHoursProblem,
              label: 'working hours',
            }),
          ),
          timeZone: optional(
            string({
              doc: 'time zone of the working hours (default: the box’s)',
              maxLength: 64,
              check: timeZoneProblem,
              label: 'time zone',
            }),
          ),
          normalDays: withDefault(
            integer({
              doc: 'a subject with after-hours activity on at least this many of the baseline days is usual then',
              min: 1,
              max: 365,
            }),
            3,
          ),
        },
        { doc: 'after-hours queries and views by peers or users that normally have none then' },
      ),
      {},
    ),
    knocking: withDefault(
      object(
        {
          refusals: withDefault(count('alert when one source address is refused more than this many times…', 1_000_000), 20),
          windowMinutes: withDefault(minutes('…within this window'), 5),
        },
        { doc: 'unknown AE titles, HL7 senders or certificates knocking from one address' },
      ),
      {},
    ),
    refusalBurst: withDefault(
      object(
        {
          refusals: withDefault(count('alert when the listeners refuse more than this many connections in all…', 10_000_000), 500),
          windowMinutes: withDefault(minutes('…within this window'), 5),
        },
        { doc: 'bursts of refusals or TLS failures from anywhere' },
      ),
      {},
    ),
    newMessageType: withDefault(
      object(
        {
          afterMessages: withDefault(
            count('alert on an HL7 message type a sender never sent before, once it has sent this many', 1_000_000),
            100,
          ),
        },
        { doc: 'HL7 message types never seen from a sender' },
      ),
      {},
    ),
    securityEvents: withDefault(
      boolean({ doc: 'alert on break-glass use, lockouts, firewall drift, safe mode and audit chain damage' }),
      true,
    ),
  },
  { doc: 'incident support: alert rules over the audit trail (docs/incident-response.md)' },
);
