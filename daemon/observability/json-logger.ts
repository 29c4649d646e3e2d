// Structured JSON lines on a stream (stdout → journald on the box). Every line has `ts`, `level`,
// `event`; fields are identifiers only (the Logger port's contract).
import type { LogFields, LogLevel, Logger } from '../core/log.ts';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LineSink {
  write(line: string): unknown;
}

export function createJsonLogger(sink: LineSink, level: LogLevel, bindings: LogFields = {}): Logger {
  const min = RANK[level];
  const emit = (lvl: LogLevel, event: string, fields?: LogFields): void => {
    if (RANK[lvl] < min) return;
    sink.write(`${JSON.stringify({ ts: new Date().toISOString(), level: lvl, event, ...bindings, ...fields })}\n`);
  };
  return {
    debug: (e, f) => emit('debug', e, f),
    info: (e, f) => emit('info', e, f),
    warn: (e, f) => emit('warn', e, f),
    error: (e, f) => emit('error', e, f),
    child: (b) => createJsonLogger(sink, level, { ...bindings, ...b }),
  };
}
