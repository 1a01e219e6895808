/**
 * Crash points for testing invariant 5 (a rotation interrupted at any point can be resumed or
 * rolled back). `KEYROT_FAILPOINTS=after-write:backend-env,after-start` makes the process kill
 * itself with SIGKILL right there — no cleanup, no finally blocks — exactly like a crash.
 * `before-rename`: a local file's temp file is written and fsynced, not yet renamed over it.
 * Unset in normal use; reading one environment variable costs nothing.
 */
export function failpoint(name: string): void {
  const spec = process.env.KEYROT_FAILPOINTS;
  if (!spec) return;
  if (spec.split(',').map((s) => s.trim()).includes(name)) process.kill(process.pid, 'SIGKILL');
}
