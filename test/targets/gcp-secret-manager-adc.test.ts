import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import { TargetError } from '../../src/core/errors.ts';
import { gcpSecretManager } from '../../src/targets/gcp-secret-manager/index.ts';
import { NO_GOOGLE_CREDENTIALS } from '../../src/targets/gcp-secret-manager/adapter.ts';
import type { Target } from '../../src/targets/types.ts';
import { testContext } from '../helpers/context.ts';
import type { GcpSecretManagerReceipt } from '../../src/targets/gcp-secret-manager/index.ts';

/**
 * On a Google Cloud host google-auth-library (gcp-metadata) decides "on GCE" from the BIOS vendor,
 * a 42:01 MAC or the serverless env before it looks at METADATA_SERVER_DETECTION: there ADC exists
 * (the attached service account), so "no credentials" cannot be tested.
 */
function onGoogleCloud(): boolean {
  try {
    if (/Google/.test(fs.readFileSync('/sys/class/dmi/id/bios_vendor', 'utf8'))) return true;
  } catch {
    // not Linux, or no DMI: fall through
  }
  return Object.values(os.networkInterfaces()).some((list) => list?.some((i) => /^42:01/.test(i.mac)));
}

/** A loopback listener that only counts connections: nothing may connect to it. */
async function tripwire(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let n = 0;
  const server = net.createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return { port, connections: () => n, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe.skipIf(onGoogleCloud())('gcp-secret-manager without Google credentials (Application Default Credentials)', () => {
  let home: string;
  let api: Awaited<ReturnType<typeof tripwire>>;
  let metadata: Awaited<ReturnType<typeof tripwire>>;
  let target: Target<GcpSecretManagerReceipt>;
  const rejections: unknown[] = [];
  const warnings: Error[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  const onWarning = (w: Error) => warnings.push(w);

  beforeEach(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'keyrot-gcp-adc-'));
    api = await tripwire();
    metadata = await tripwire();
    rejections.length = 0;
    warnings.length = 0;
    process.on('unhandledRejection', onRejection);
    process.on('warning', onWarning);
    // google-auth-library reads process.env itself: an empty ADC environment there.
    const env: NodeJS.ProcessEnv = {
      HOME: home,
      // No metadata-server ping; and were one attempted anyway, it would hit the loopback tripwire,
      // never 169.254.169.254 or metadata.google.internal.
      METADATA_SERVER_DETECTION: 'none',
      GCE_METADATA_HOST: `127.0.0.1:${metadata.port}`,
    };
    for (const v of [
      'GOOGLE_APPLICATION_CREDENTIALS',
      'google_application_credentials',
      'APPDATA',
      'GCE_METADATA_IP',
      'K_SERVICE',
      'CLOUD_RUN_JOB',
      'FUNCTION_NAME',
      'GOOGLE_CLOUD_QUOTA_PROJECT',
    ]) {
      vi.stubEnv(v, undefined);
    }
    for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
    target = await gcpSecretManager.create(
      { project: 'keyrot-test', secret: 'openai-api-key', endpoint: `127.0.0.1:${api.port}` },
      testContext({ env, name: 'gcp' }),
    );
  });

  afterEach(async () => {
    await target.close?.();
    process.off('unhandledRejection', onRejection);
    process.off('warning', onWarning);
    vi.unstubAllEnvs();
    await api.close();
    await metadata.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  /** Long enough for a rejection started by the client (the old bug) to surface. */
  const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

  it('preflight is an error in product words: no stack trace, no unhandled rejection, nothing on the network', async () => {
    const pf = await target.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toBe(NO_GOOGLE_CREDENTIALS);
    expect(pf.reason).toBe(
      'no Google credentials found: run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS, or give the target a token: env:VAR',
    );
    await settle();
    expect(rejections).toEqual([]);
    expect(warnings.map((w) => w.name)).not.toContain('MetadataLookupWarning');
    expect(api.connections()).toBe(0); // the client was never built, so never called
    expect(metadata.connections()).toBe(0);
  });

  it('read() throws the same auth error, and again on a second call (no cached failure, no retry storm)', async () => {
    for (let i = 0; i < 2; i++) {
      const err = await target.read().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TargetError);
      expect(err).toMatchObject({ kind: 'auth', retryable: false, target: 'gcp', message: NO_GOOGLE_CREDENTIALS });
    }
    await settle();
    expect(rejections).toEqual([]);
    expect(api.connections()).toBe(0);
    expect(metadata.connections()).toBe(0);
  });

  it('an unreadable GOOGLE_APPLICATION_CREDENTIALS file is named, without echoing its contents', async () => {
    const file = path.join(home, 'key.json');
    fs.writeFileSync(file, '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nSEKRETSEKRET');
    vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', file);
    const pf = await target.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toContain(`cannot load Google credentials from GOOGLE_APPLICATION_CREDENTIALS (${file}): it is not valid JSON`);
    expect(pf.reason).not.toContain('SEKRET');
    await settle();
    expect(rejections).toEqual([]);
    expect(api.connections()).toBe(0);
  });
});
