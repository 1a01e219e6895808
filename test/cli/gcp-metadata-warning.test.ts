import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';

/**
 * `keyrot plan` on a gcp-secret-manager target with no Google credentials: keyrot says so in its
 * own words, and gcp-metadata's MetadataLookupWarning (its metadata-server probe failed in a way it
 * did not expect) does not leak onto stderr. The probe goes to a loopback listener that resets
 * every connection (GCE_METADATA_HOST), never to 169.254.169.254: the warning the real probe gives
 * off Google Cloud, deterministically and without leaving 127.0.0.1.
 */
function onGoogleCloud(): boolean {
  try {
    return /Google/.test(fs.readFileSync('/sys/class/dmi/id/bios_vendor', 'utf8'));
  } catch {
    return false;
  }
}

describe.skipIf(onGoogleCloud())('third-party warnings', () => {
  let dir: string;
  let resets = 0;
  const server = net.createServer((s) => {
    resets++;
    s.resetAndDestroy();
  });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyrot-gcp-warning-'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    fs.writeFileSync(
      path.join(dir, 'targets.yaml'),
      'version: 1\nkey: { name: OPENAI_API_KEY, source: prompt, verify: false }\nenvironments:\n  prod:\n    targets:\n' +
        '      - { type: gcp-secret-manager, project: keyrot-test, secret: openai-api-key, endpoint: "127.0.0.1:9" }\n',
    );
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('plan without Google credentials: keyrot\'s message, no MetadataLookupWarning', async () => {
    const port = (server.address() as net.AddressInfo).port;
    const r = await runCli(['plan'], { cwd: dir, env: { HOME: dir, GCE_METADATA_HOST: `127.0.0.1:${port}` } });
    expect(r.code).toBe(1);
    expect(resets).toBeGreaterThan(0); // the probe did run, and failed
    expect(r.stderr + r.stdout).toContain('no Google credentials found');
    expect(r.stderr).not.toContain('MetadataLookupWarning');
    expect(r.stderr).not.toMatch(/\(node:\d+\)/);
  });
});
