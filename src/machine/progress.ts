/** Progress of a rotation, for the live display (TTY) or plain lines. */
export type TargetPhase =
  | 'preflight'
  | 'ready'
  | 'writing'
  | 'written'
  | 'verifying'
  | 'redeploying'
  | 'verified'
  | 'restoring'
  | 'restored'
  | 'failed'
  | 'finalized'
  // keyrot discover: a provider being searched, searched, or skipped (no credentials, unreachable).
  | 'searching'
  | 'searched'
  | 'skipped';

export interface Reporter {
  step(name: string, detail?: string): void;
  target(name: string, phase: TargetPhase, detail?: string): void;
  info(message: string): void;
  warn(message: string): void;
}

export const silentReporter: Reporter = { step() {}, target() {}, info() {}, warn() {} };
