import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint, hint } from '../../src/core/secret.ts';
import { EngineUnreachableError, ImageNotFoundError, runScan } from '../../src/scan/index.ts';
import { dockerEngine, uniqueName } from '../helpers/docker-engine.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * `--image` against a REAL Docker Engine (the test Engine of test/helpers/docker-engine.ts):
 * an image built from `FROM scratch` with `ENV OPENAI_API_KEY=<generated>` through the Engine
 * API (POST /build): nothing is pulled. Skipped (with the reason) when no Engine can be started.
 */
const docker = await dockerEngine();
const skip = 'skip' in docker ? docker.skip : undefined;
if (skip) console.warn(`[scan --image] skipped: ${skip}`);

describe('no Engine reachable', () => {
  it('is a clear error naming where keyrot looked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyrot-scan-img-'));
    try {
      const err = await runScan({ paths: [dir], cwd: dir, images: ['app:1'], env: { DOCKER_HOST: `unix://${dir}/docker.sock` } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EngineUnreachableError);
      expect((err as Error).message).toContain(`cannot reach a Docker Engine at unix://${dir}/docker.sock`);
      expect((err as Error).message).toContain('DOCKER_HOST');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(skip !== undefined)('image history and config (real Docker Engine)', () => {
  const d = docker as Exclude<typeof docker, { skip: string }>;
  const image = `${uniqueName('keyrot-scan-test-')}:1`;
  const key = testKey();
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyrot-scan-img-'));
    writeFileSync(join(dir, 'Dockerfile'), `FROM scratch\nENV OPENAI_API_KEY=${key}\nLABEL org.example.note=keyrot-scan-test\n`);
    const tar = execFileSync('tar', ['-C', dir, '-cf', '-', 'Dockerfile']);
    const { apiVersion } = await d.engine.info();
    const res = await d.engine.raw({
      method: 'POST',
      path: `/v${apiVersion}/build?t=${encodeURIComponent(image)}&rm=1&forcerm=1`,
      body: tar,
      contentType: 'application/x-tar',
      timeoutMs: 120_000,
    });
    const body = res.body.toString('utf8');
    if (res.status !== 200 || /"error"/.test(body)) throw new Error(`test setup: image build failed (${res.status})`);
  });

  afterAll(async () => {
    await d.engine.raw({ method: 'DELETE', path: `/images/${encodeURIComponent(image)}?force=1` }).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    d.close();
  });

  it('finds the key in the layer that set it and in Config.Env, by hint and fingerprint', async () => {
    const r = await runScan({ paths: [dir], cwd: dir, images: [image], env: d.env });
    const img = r.findings.filter((f) => f.source === 'image');
    expect(img.map((f) => f.location)).toEqual([`image ${image} layer 2`, expect.stringMatching(new RegExp(`^image ${image.replace(/[.:]/g, '\\$&')} config Env\\[\\d\\]$`))]);
    expect(img[0]).toMatchObject({ image, layer: 2, field: 'CreatedBy', kind: 'project', hint: hint(key), fingerprint: fingerprint(key), leak: true });
    expect(r.scanned.images).toBe(1);
    expect(JSON.stringify(r).includes(key)).toBe(false);
  });

  it('an image that does not exist is reported as such', async () => {
    await expect(runScan({ paths: [dir], cwd: dir, images: ['keyrot-scan-test-absent:0'], env: d.env })).rejects.toBeInstanceOf(ImageNotFoundError);
  });
});
