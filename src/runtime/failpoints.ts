/**
 * Crash points for testing invariant 5 (a rotation interrupted at any point can be resumed or
 * rolled back). `KEYROT_FAILPOINTS=after-write:backend-env,after-start` makes the process kill
 * itself with SIGKILL right there — no cleanup, no finally blocks — exactly like a crash.
 * `before-rename`: a local file's temp file is written and fsynced, not yet renamed over it.
 * `journal:N`: right after the Nth journal event this process appended is durable (every event
 * in turn is a crash point: test/engine/kill-points.test.ts).
 * Unset in normal use; reading one environment variable costs nothing.
 */
export function failpoint(name: string): void {
  const spec = process.env.KEYROT_FAILPOINTS;
  if (!spec) return;
  if (spec.split(',').map((s) => s.trim()).includes(name)) process.kill(process.pid, 'SIGKILL');
}

/** Journal events this process appended (one process runs one command): what `journal:N` counts. */
let journalAppends = 0;

/** Called once a journal event is durable (state/journal-auth.ts): the `journal:N` crash point. */
export function afterJournalAppend(): void {
  if (!process.env.KEYROT_FAILPOINTS) return;
  journalAppends++;
  failpoint(`journal:${journalAppends}`);
}

/**
 * How many of `count` events committed together (state/group-commit.ts) may go in one write: all
 * of them, unless a `journal:N` point falls among them; then up to that event, so the crash
 * leaves exactly N events durable.
 */
export function journalEventsUntilFailpoint(count: number): number {
  const spec = process.env.KEYROT_FAILPOINTS;
  if (!spec) return count;
  const ahead = spec
    .split(',')
    .map((s) => Number(/^journal:(\d+)$/.exec(s.trim())?.[1]))
    .filter((n) => n > journalAppends);
  return ahead.length ? Math.min(count, Math.min(...ahead) - journalAppends) : count;
}
