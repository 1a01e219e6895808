import { redact } from './redact.ts';
import { cut, stripControls } from './printable.ts';

/**
 * What an error says, made safe at construction: no control characters (an error can quote a
 * provider's answer or a file), no key or token, and a bounded length.
 */
function safeMessage(message: string, max: number): string {
  return cut(redact(stripControls(message)), max);
}

/**
 * Exit codes of the product contract (4: `verify` could not reach the key's issuer to check it). `interrupted` and `terminated` follow the shell's 128 + signal
 * number (SIGINT 2, SIGTERM 15): Ctrl-C, or an end of input at a prompt, is the operator's choice,
 * not a failure.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, locked: 3, unreachable: 4, interrupted: 130, terminated: 143 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

/** An inventory or usage mistake: names file:line:column and the field. Exit 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly position: SourcePosition | undefined;
  readonly field: string | undefined;
  constructor(message: string, position?: SourcePosition, field?: string) {
    super(safeMessage(message, 600));
    this.position = position;
    this.field = field;
  }
  /** `targets.yaml:12:7: environments.production.targets[2].type: unknown type "herokuu" ...` */
  format(): string {
    const where = this.position ? `${this.position.file}:${this.position.line}:${this.position.column}: ` : '';
    const field = this.field ? `${this.field}: ` : '';
    return `${where}${field}${this.message}`;
  }
}

/** Several inventory mistakes at once: users fix them in one pass. */
export class ConfigErrors extends Error {
  override name = 'ConfigErrors';
  readonly errors: ConfigError[];
  /** Mistakes found past the reported ones (only counted). */
  readonly omitted: number;
  constructor(errors: ConfigError[], omitted = 0) {
    super([...errors.map((e) => e.format()), ...(omitted ? [`... and ${omitted} more`] : [])].join('\n'));
    this.errors = errors;
    this.omitted = omitted;
  }
}

/**
 * Collects inventory mistakes. Past the first MAX_REPORTED it only counts them: an input with
 * 50,000 bad keys gives 20 readable lines and a count, and the cost of locating each mistake
 * (making the ConfigError) is paid only for those shown.
 */
export class ConfigErrorList {
  static readonly MAX_REPORTED = 20;
  readonly list: ConfigError[] = [];
  omitted = 0;
  add(make: () => ConfigError): void {
    if (this.list.length < ConfigErrorList.MAX_REPORTED) this.list.push(make());
    else this.omitted++;
  }
  get empty(): boolean {
    return this.list.length === 0;
  }
  toError(): ConfigErrors {
    return new ConfigErrors(this.list, this.omitted);
  }
  throwIfAny(): void {
    if (!this.empty) throw this.toError();
  }
}

export const TARGET_ERROR_KINDS = [
  'auth',
  'permission',
  'not-found',
  'conflict',
  'rate-limited',
  'unavailable',
  'timeout',
  'invalid',
  'unsupported',
  'mismatch',
] as const;
export type TargetErrorKind = (typeof TARGET_ERROR_KINDS)[number];

export interface TargetErrorInit {
  target?: string;
  op?: string;
  kind: TargetErrorKind;
  retryable?: boolean;
  /** Server-requested delay before the next attempt (Retry-After and friends), in ms. */
  retryAfterMs?: number;
  status?: number;
  cause?: unknown;
}

/**
 * A provider operation failed. Adapters translate SDK/HTTP errors into this at the boundary:
 * the message is in product words, names the provider and what to do next, and is redacted.
 */
export class TargetError extends Error {
  override name = 'TargetError';
  readonly target: string | undefined;
  readonly op: string | undefined;
  readonly kind: TargetErrorKind;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly status: number | undefined;

  constructor(message: string, init: TargetErrorInit) {
    super(safeMessage(message, 2000));
    this.target = init.target;
    this.op = init.op;
    this.kind = init.kind;
    this.retryable = init.retryable ?? (init.kind === 'rate-limited' || init.kind === 'unavailable' || init.kind === 'timeout');
    this.retryAfterMs = init.retryAfterMs;
    this.status = init.status;
    // The cause is kept for debugging but never printed: SDK errors can carry request bodies.
    if (init.cause !== undefined) Object.defineProperty(this, 'cause', { value: init.cause, enumerable: false });
  }
}

/** Another rotation holds the environment's lock. Exit 3. */
export class LockedError extends Error {
  override name = 'LockedError';
  constructor(message: string) {
    super(safeMessage(message, 2000));
  }
}

/** Ends the command with a given exit code and a message already meant for the user. */
export class ExitError extends Error {
  override name = 'ExitError';
  readonly code: ExitCode;
  constructor(code: ExitCode, message: string) {
    super(safeMessage(message, 4000));
    this.code = code;
  }
}

/**
 * The operator left a prompt (Ctrl-C, Ctrl-D, or a stop signal while it waited): the question has
 * no answer. Not an error: the command says where things stand and exits 130.
 */
export class PromptCancelled extends Error {
  override name = 'PromptCancelled';
  constructor(how: string) {
    super(`prompt cancelled (${how})`);
  }
}

/** A bug in keyrot. */
export class InternalError extends Error {
  override name = 'InternalError';
}

/** Classifies anything thrown into a TargetError (network errors, timeouts, unknown throws). */
export function toTargetError(err: unknown, target?: string, op?: string): TargetError {
  if (err instanceof TargetError) {
    if (err.target || !target) return err;
    return new TargetError(err.message, { ...err, target, op: err.op ?? op, kind: err.kind, cause: err.cause });
  }
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code;
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError' || code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new TargetError(`timed out${op ? ` during ${op}` : ''}`, { target, op, kind: 'timeout', cause: err });
  }
  if (code && /^(ECONNRESET|ECONNREFUSED|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|UND_ERR_SOCKET|ECONNABORTED)$/.test(code)) {
    return new TargetError(`network error (${code})${op ? ` during ${op}` : ''}`, {
      target,
      op,
      kind: 'unavailable',
      // A refused connection or unknown host rarely heals within a retry budget, but a reset does.
      retryable: code !== 'ENOTFOUND' && code !== 'ECONNREFUSED',
      cause: err,
    });
  }
  return new TargetError(String(e?.message ?? err), { target, op, kind: 'invalid', retryable: false, cause: err });
}
