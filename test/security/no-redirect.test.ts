import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { EmulatorServer } from '../../emulators/server.ts';
import { KubernetesEmulator } from '../../emulators/kubernetes/emulator.ts';
import { liveCheck } from '../../src/keys/kinds.ts';
import { createOpenAIIssuer } from '../../src/keys/openai-admin.ts';
import { sendNotification } from '../../src/scheduler/notify.ts';
import { kubernetesState } from '../../src/state/kubernetes.ts';
import { Secret } from '../../src/core/secret.ts';
import { fakeClock, systemClock } from '../../src/runtime/clock.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import { testKey } from '../helpers/keys.ts';
import { targetErrorOf } from '../helpers/errors.ts';

/**
 * The calls outside the targets that carry a key or a credential: the OpenAI live check (the new
 * key as a bearer token), the Admin API client (the admin key), the notification webhook (its URL
 * is its secret) and the Kubernetes state store (the kubeconfig's credentials). Each meets a 307
 * to a second loopback server that records what reaches it: nothing does, and the error names the
 * Location and what to fix.
 */
let provider: EmulatorServer;
let elsewhere: EmulatorServer;

beforeAll(async () => {
  provider = new EmulatorServer({ name: 'provider' });
  await provider.start();
  elsewhere = new EmulatorServer({ name: 'elsewhere' });
  await elsewhere.start();
});
afterAll(async () => {
  await provider.stop();
  await elsewhere.stop();
});
beforeEach(() => provider.clearFaults());

const redirectEverything = () => provider.failNext({ status: 307, headers: { location: `${elsewhere.url}/catch?token=stolen` }, times: 100 });
const elsewhereHost = () => new URL(elsewhere.url).host;


describe('no redirects outside the targets', () => {
  it('the OpenAI live check: the new key is not sent to the Location', async () => {
    const key = testKey();
    redirectEverything();
    const err = await targetErrorOf(liveCheck(new Secret(key), `${provider.url}/v1`, systemClock));
    expect(elsewhere.requests).toEqual([]);
    expect(err).toMatchObject({ kind: 'invalid', retryable: false, status: 307 });
    expect(err.message).toContain(`a redirect to ${elsewhereHost()}/catch`);
    expect(err.message).toContain('key.endpoint');
    expect(err.message).not.toContain('stolen');
    expect(err.message).not.toContain(key);
  });

  it('the OpenAI Admin API client: the admin key is not sent to the Location', async () => {
    const adminKey = testKey('sk-admin-');
    redirectEverything();
    const issuer = createOpenAIIssuer({ endpoint: `${provider.url}/v1`, adminKey: new Secret(adminKey), project: 'proj_x', clock: fakeClock() });
    const err = await targetErrorOf(issuer.issue({ env: 'production', rotationId: 'rot_1' }));
    expect(elsewhere.requests).toEqual([]);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(`a redirect to ${elsewhereHost()}/catch`);
    expect(err.message).toContain('key.admin.endpoint');
    expect(err.message).not.toContain(adminKey);
  });

  it('the notification webhook: nothing is posted to the Location; the warning names it', async () => {
    const lines: string[] = [];
    redirectEverything();
    const delivered = await sendNotification(
      { kind: 'env', name: 'HOOK', raw: 'env:HOOK' },
      { text: 'rotated', event: 'success', env: 'production', at: new Date(0).toISOString() },
      { baseDir: process.cwd(), env: { HOOK: `${provider.url}/hooks/T000/B000/secretpath` }, clock: fakeClock(), logger: createLogger({ write: (l) => lines.push(l) }) },
    );
    expect(delivered).toBe(false);
    expect(elsewhere.requests).toEqual([]);
    // Not retried: the same URL gets the same redirect.
    expect(provider.requests.filter((r) => r.path.startsWith('/hooks/'))).toHaveLength(1);
    expect(lines.join('\n')).toContain(`a redirect to ${elsewhereHost()}/catch`);
    expect(lines.join('\n')).toContain('notify.webhook');
    expect(lines.join('\n')).not.toContain('secretpath');
  });

  describe('the Kubernetes state store', () => {
    let dir: string;
    let emu: KubernetesEmulator;
    let kubeconfig: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'keyrot-noredirect-'));
      emu = new KubernetesEmulator();
      await emu.start();
      kubeconfig = await emu.writeKubeconfig(join(dir, 'kubeconfig'));
      emu.seedNamespace('keyrot');
    });
    afterAll(async () => {
      await emu.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it('a 307 from the API server is not followed: the kubeconfig credentials stay home', async () => {
      const store = kubernetesState({ namespace: 'keyrot', name: 'noredirect', env: { KUBECONFIG: kubeconfig }, warn: () => {} });
      emu.server.failNext({ status: 307, headers: { location: `${elsewhere.url}/api/v1/namespaces/keyrot/configmaps?token=stolen` }, times: 100 });
      const err = await targetErrorOf(store.readJournalText('production'));
      expect(elsewhere.requests).toEqual([]);
      expect(err).toMatchObject({ kind: 'invalid', retryable: false, status: 307 });
      expect(err.message).toContain(`a redirect to ${elsewhereHost()}/api/v1/namespaces/keyrot/configmaps`);
      expect(err.message).not.toContain('stolen');
      emu.server.clearFaults();
    });
  });
});
