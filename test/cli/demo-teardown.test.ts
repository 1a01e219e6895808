import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.ts';

/**
 * `keyrot demo` removes its temp directory however it ends. The demo runs as a real subprocess
 * with its own TMPDIR; it is killed with a real signal in the middle of its rotation step.
 */
const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function demoDirs(root: string): string[] {
  return readdirSync(root).filter((n) => n.startsWith('keyrot-demo-'));
}

async function killDemoDuringRotate(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; root: string; stderr: string }> {
  const root = mkdtempSync(join(tmpdir(), 'keyrot-demo-tmp-'));
  roots.push(root);
  const child = spawn(process.execPath, [BIN, 'demo'], {
    env: { PATH: process.env.PATH ?? '', HOME: root, TMPDIR: root, NO_COLOR: '1', DOCKER_HOST: `unix://${root}/no-docker.sock` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let sent = false;
  child.stdout.on('data', (d) => {
    stdout += d;
    if (!sent && stdout.includes('── 3. rotate')) {
      sent = true;
      expect(demoDirs(root)).toHaveLength(1);
      child.kill(signal);
    }
  });
  child.stderr.on('data', (d) => (stderr += d));
  const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  expect(sent).toBe(true);
  return { code, signal: sig, root, stderr };
}

it.each([
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const)('%s during the rotation: the temp directory is gone, exit %i', async (signal, expected) => {
  const r = await killDemoDuringRotate(signal);
  expect({ code: r.code, signal: r.signal }).toEqual({ code: expected, signal: null });
  expect(demoDirs(r.root)).toEqual([]);
  expect(r.stderr).not.toMatch(/at .*\.(ts|js):\d+/);
  // The rotation step may offer `keyrot resume` on the demo's state: the demo says that state is gone.
  if (signal === 'SIGINT') expect(r.stderr).toContain('which is removed with its rotation: nothing to resume (`keyrot demo --keep` keeps it)');
}, 180_000);
