import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * keyrot keeps its state key and anchors in $XDG_CONFIG_HOME/keyrot (default ~/.config/keyrot):
 * tests get a throw-away one, set before the workers start so they (and the CLIs they spawn
 * through test/helpers/cli.ts) inherit it, and never touch the real home directory.
 */
export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'keyrot-test-config-'));
  process.env.XDG_CONFIG_HOME = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
