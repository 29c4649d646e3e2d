// RFC 5424 syslog messages carrying a DICOM audit message (the IHE ATNA "Record Audit Event" form), and
// the RFC 5425 octet-counting frame they travel in over TLS.
import type { AuditOutcome } from '../core/audit-events.ts';
import type { AuditRecord } from '../core/audit-trail.ts';
import { auditMessageXml } from './audit-message-xml.ts';

/** authpriv (RFC 5424 table 1): security/authorization messages. */
const FACILITY_AUTHPRIV = 10;
/** Private enterprise number for documentation (RFC 5612); the SD-ID names the chain position. */
export const SD_ID = 'edge@32473';
export const MSGID = 'IHE+RFC-3881';
const BOM = '\ufeff';

export function severityOf(outcome: AuditOutcome): number {
  // notice for success, warning for a minor failure, error for serious and major failures
  return outcome === 0 ? 5 : outcome === 4 ? 4 : 3;
}

/** RFC 5424 header fields are PRINTUSASCII without spaces, with a length cap; '-' when empty. */
export function headerField(text: string, max: number): string {
  const clean = text.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return clean === '' ? '-' : clean;
}

function sdValue(text: string): string {
  return text.replace(/["\\\]]/g, (c) => `\\${c}`);
}

export interface SyslogIdentity {
  /** HOSTNAME field: the box's name (site.name). */
  readonly hostname: string;
  readonly appName: string;
  readonly procId: string;
}

/** One RFC 5424 message: header, `[edge@32473 seq hash type environment]`, then BOM + the audit XML. */
export function syslogMessage(record: AuditRecord, hash: string, identity: SyslogIdentity): string {
  const e = record.event;
  const pri = FACILITY_AUTHPRIV * 8 + severityOf(e.outcome);
  // A summary of repeats carries its count here too, so a collector can add it up without the XML.
  const occurrences = e.occurrences === undefined ? '' : ` occurrences="${e.occurrences.count}"`;
  // The environment in the structured data: a collector can route or drop a test box's stream on it.
  const environment = record.environment === undefined ? '' : ` environment="${sdValue(record.environment)}"`;
  const sd = `[${SD_ID} seq="${record.seq}" hash="${sdValue(hash)}" type="${sdValue(e.type)}"${occurrences}${environment}]`;
  return `<${pri}>1 ${new Date(e.at).toISOString()} ${headerField(identity.hostname, 255)} ${headerField(identity.appName, 48)} ${headerField(identity.procId, 128)} ${MSGID} ${sd} ${BOM}${auditMessageXml(record, identity.hostname)}`;
}

/** RFC 5425 §4.3: MSG-LEN SP SYSLOG-MSG, the length in octets. */
export function octetFrame(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

export interface ParsedSyslog {
  readonly pri: number;
  readonly version: number;
  readonly timestamp: string;
  readonly hostname: string;
  readonly appName: string;
  readonly procId: string;
  readonly msgId: string;
  readonly structuredData: string;
  readonly msg: string;
}

/** A strict RFC 5424 parse (for tests and tools): undefined when the line does not conform. */
export function parseSyslog(line: string): ParsedSyslog | undefined {
  const m =
    /^<(\d{1,3})>([1-9]\d{0,2}) (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:\[[^ \]=]+(?: [^ =\]]+="(?:[^"\\\]]|\\["\\\]])*")*\])+)(?: (.*))?$/s.exec(
      line,
    );
  if (m === null) return undefined;
  const pri = Number(m[1]);
  if (pri > 191) return undefined;
  if (m[3] !== '-' && !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$/.test(m[3]!)) return undefined;
  return {
    pri,
    version: Number(m[2]),
    timestamp: m[3]!,
    hostname: m[4]!,
    appName: m[5]!,
    procId: m[6]!,
    msgId: m[7]!,
    structuredData: m[8]!,
    msg: (m[9] ?? '').replace(/^\ufeff/, ''),
  };
}
