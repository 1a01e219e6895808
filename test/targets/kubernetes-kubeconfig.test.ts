import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Secret } from '../../src/core/secret.ts';
import { KubernetesEmulator } from '../../emulators/kubernetes/emulator.ts';
import { kubernetes } from '../../src/targets/kubernetes/index.ts';
import { createKubernetesTarget } from '../../src/targets/kubernetes/adapter.ts';
import { demo } from '../../emulators/kubernetes/demo.ts';
import { testContext } from '../helpers/context.ts';
import { testKey } from '../helpers/keys.ts';

/** How the target finds its cluster: KUBECONFIG, ~/.kube/config, context:, in-cluster. */
describe('kubernetes target: kubeconfig, context and in-cluster selection', () => {
  let emu: KubernetesEmulator;
  let dir: string;
  const oldKey = testKey();
  const config = { namespace: 'default', secret: 'openai-api-key', key: 'api-key' };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyrot-k8s-cfg-'));
    emu = new KubernetesEmulator();
    await emu.start();
    emu.seedSecret('default', 'openai-api-key', { 'api-key': oldKey });
  });
  afterAll(async () => {
    await emu.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** A kubeconfig with contexts `good` (a valid token) and `bad` (a token the server rejects). */
  function twoContexts(current: string, prefix = ''): string {
    const cluster = { server: emu.url, 'insecure-skip-tls-verify': true };
    return stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: `${prefix}c`, cluster }],
      users: [
        { name: `${prefix}good-user`, user: { token: emu.token } },
        { name: `${prefix}bad-user`, user: { token: 'emu-not-a-valid-token-at-all' } },
      ],
      contexts: [
        { name: `${prefix}good`, context: { cluster: `${prefix}c`, user: `${prefix}good-user` } },
        { name: `${prefix}bad`, context: { cluster: `${prefix}c`, user: `${prefix}bad-user` } },
      ],
      'current-context': current,
    });
  }

  const make = (env: NodeJS.ProcessEnv, extra: { context?: string } = {}) =>
    kubernetes.create({ ...config, ...extra }, testContext({ baseDir: dir, name: 'k8s', env }));

  it('context: selects the named kubeconfig context instead of the current one', async () => {
    const file = join(dir, 'two-contexts');
    await writeFile(file, twoContexts('bad'));
    const viaCurrent = await (await make({ KUBECONFIG: file })).preflight();
    expect(viaCurrent.status).toBe('blocked');
    expect(viaCurrent.reason).toContain('credentials of kubeconfig context "bad"');
    const t = await make({ KUBECONFIG: file }, { context: 'good' });
    expect(t.location).toBe('good:default/openai-api-key[api-key]');
    const pf = await t.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    expect(pf.current.kind === 'value' && pf.current.value.equals(new Secret(oldKey))).toBe(true);
  });

  it('an unknown context is named with the ones the kubeconfig has', async () => {
    const file = join(dir, 'two-contexts-b');
    await writeFile(file, twoContexts('good'));
    const pf = await (await make({ KUBECONFIG: file }, { context: 'prod' })).preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toBe(`the kubeconfig (KUBECONFIG=${file}) has no context "prod" (it has: good, bad)`);
  });

  it('KUBECONFIG lists merge like kubectl: missing files skipped, the first definition wins', async () => {
    const first = join(dir, 'first');
    const second = join(dir, 'second');
    // Both define context "good"; the second file's one would fail. The first file sets no
    // current-context, so the second file's current-context ("good") is used.
    await writeFile(first, twoContexts(''));
    await writeFile(second, twoContexts('good').replace(emu.token, 'emu-rejected-token-from-second-file'));
    const env = { KUBECONFIG: [join(dir, 'missing'), first, second].join(delimiter) };
    const pf = await (await make(env)).preflight();
    expect(pf.status, pf.reason).toBe('ready');
  });

  it('falls back to ~/.kube/config from HOME', async () => {
    const home = join(dir, 'home');
    await mkdir(join(home, '.kube'), { recursive: true });
    await writeFile(join(home, '.kube', 'config'), emu.kubeconfig());
    const pf = await (await make({ HOME: home })).preflight();
    expect(pf.status, pf.reason).toBe('ready');
  });

  it('without any configuration it says where it looked', async () => {
    const home = join(dir, 'empty-home');
    await mkdir(home, { recursive: true });
    const pf = await (await make({ HOME: home })).preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toContain(`KUBECONFIG is not set, ${join(home, '.kube', 'config')} does not exist and keyrot is not running in a pod`);
    const missing = await (await make({ KUBECONFIG: join(dir, 'nope') })).preflight();
    expect(missing.reason).toContain('none of these files exists');
  });

  it('a plain-http server without insecure-skip-tls-verify is refused with a clear message', async () => {
    const file = join(dir, 'http-strict');
    await writeFile(file, emu.kubeconfig().replace('insecure-skip-tls-verify: true', 'insecure-skip-tls-verify: false'));
    const pf = await (await make({ KUBECONFIG: file })).preflight();
    expect(pf.reason).toContain('uses a plain-HTTP server');
    expect(pf.reason).toContain('insecure-skip-tls-verify: true');
  });

  it('the demo entry works end to end through its kubeconfig', async () => {
    const workDir = join(dir, 'demo');
    await mkdir(workDir);
    const key = testKey();
    const d = await demo({ oldKey: key, workDir, varName: 'OPENAI_API_KEY' });
    if ('skip' in d) throw new Error(d.skip);
    try {
      expect(d.env.KUBECONFIG).toBe(join(workDir, 'kubeconfig'));
      expect(await readFile(d.env.KUBECONFIG!, 'utf8')).not.toContain(key);
      const entry = d.targets[0]!;
      const parsed = kubernetes.schema.parse(entry);
      const t = await kubernetes.create(parsed, testContext({ baseDir: workDir, name: 'demo', env: d.env }));
      const pf = await t.preflight();
      expect(pf.status, pf.reason).toBe('ready');
      expect(pf.current.kind === 'value' && pf.current.value.equals(new Secret(key))).toBe(true);
      const next = new Secret(testKey());
      const o = { rotationId: 'rot_demo', fingerprint: next.fingerprint };
      const receipt = await t.write(next, o);
      await t.verify(next, o, receipt);
      expect((await t.redeploy!(o, receipt)).detail).toBe('deployment/api rolled out');
    } finally {
      await d.stop();
    }
  });
});

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!haveOpenssl())('kubernetes target: in a pod (service account, HTTPS)', () => {
  let emu: KubernetesEmulator;
  let dir: string;
  let saDir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyrot-k8s-pod-'));
    // A throw-away self-signed certificate for 127.0.0.1, as a cluster CA would issue.
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=kube-apiserver',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    const tls = { key: await readFile(join(dir, 'key.pem'), 'utf8'), cert: await readFile(join(dir, 'cert.pem'), 'utf8') };
    emu = new KubernetesEmulator({ tls });
    await emu.start();
    emu.seedSecret('keyrot', 'openai-api-key', { 'api-key': testKey() });
    saDir = join(dir, 'serviceaccount');
    await mkdir(saDir);
    await writeFile(join(saDir, 'token'), emu.token);
    await writeFile(join(saDir, 'ca.crt'), tls.cert);
    await writeFile(join(saDir, 'namespace'), 'keyrot');
  });
  afterAll(async () => {
    await emu.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const podEnv = () => ({ HOME: join(dir, 'no-home'), KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: new URL(emu.url).port });

  it('uses the mounted token and CA when KUBERNETES_SERVICE_HOST is set', async () => {
    const t = await createKubernetesTarget(
      { namespace: 'keyrot', secret: 'openai-api-key', key: 'api-key' },
      testContext({ baseDir: dir, name: 'pod', env: podEnv() }),
      { serviceAccountDir: saDir },
    );
    const pf = await t.preflight();
    expect(pf.status, pf.reason).toBe('ready');
    const next = new Secret(testKey());
    await t.write(next, { rotationId: 'rot_pod', fingerprint: next.fingerprint });
    expect(emu.getSecret('keyrot', 'openai-api-key')!.data['api-key']).toBe(next.reveal());
    const auth = emu.server.requests.at(-1)!.headers.authorization;
    expect(auth).toBe(`Bearer ${emu.token}`);
  });

  it('a server certificate the CA does not vouch for is a TLS error in product words', async () => {
    const other = join(dir, 'other-sa');
    await mkdir(other);
    await writeFile(join(other, 'token'), emu.token);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=other', '-keyout', join(other, 'k.pem'), '-out', join(other, 'ca.crt')], { stdio: 'ignore' });
    const t = await createKubernetesTarget(
      { namespace: 'keyrot', secret: 'openai-api-key', key: 'api-key' },
      testContext({ baseDir: dir, name: 'pod', env: podEnv() }),
      { serviceAccountDir: other },
    );
    const pf = await t.preflight();
    expect(pf.status).toBe('blocked');
    expect(pf.reason).toMatch(/TLS verification of the Kubernetes API server https:\/\/127\.0\.0\.1:\d+ \(context "in-cluster"\) failed/);
  });

  it('a pod without a mounted token says so', async () => {
    const t = await createKubernetesTarget(
      { namespace: 'keyrot', secret: 'openai-api-key', key: 'api-key' },
      testContext({ baseDir: dir, name: 'pod', env: podEnv() }),
      { serviceAccountDir: join(dir, 'nothing-here') },
    );
    expect((await t.preflight()).reason).toContain('no service account token is mounted');
  });
});
