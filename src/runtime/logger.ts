import { printable, printableJson } from '../core/printable.ts';
import { redactValue } from '../core/redact.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const order: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/**
 * Every log line passes through the redactor. `json` writes one JSON object per line
 * (daemon mode); otherwise plain text. Logs go to stderr: stdout is for results.
 */
export function createLogger(opts: { level?: LogLevel; json?: boolean; write?: (line: string) => void } = {}): Logger {
  const min = order[opts.level ?? 'info'];
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (order[level] < min) return;
    if (opts.json) {
      write(printableJson(JSON.stringify(redactValue({ time: new Date().toISOString(), level, msg, ...fields }))));
    } else {
      const extra = fields && Object.keys(fields).length ? ' ' + JSON.stringify(redactValue(fields)) : '';
      write(printable(`${level === 'info' ? '' : level + ': '}${msg}${extra}`));
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
