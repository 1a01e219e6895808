import { dockerSecret } from '../../../src/targets/docker-secret/index.ts';
import { fingerprint } from '../../../src/core/secret.ts';
import { testContext } from '../../helpers/context.ts';
import { dockerEngine, uniqueName, type TestDocker } from '../../helpers/docker-engine.ts';
import { proxyFaults, startEngineProxy } from '../../helpers/docker-secret-proxy.ts';
import type { ConformanceHarness } from '../harness.ts';

/**
 * docker-secret joins the suite against a REAL Docker Engine in swarm mode (see
 * test/helpers/docker-engine.ts): one service with 0 replicas mounts the secret.
 *
 * - peek: the Engine never returns secret data, so peek reads which secret the service mounts and
 *   maps it to a candidate: by the value seed() created it with, or by its keyrot.fingerprint label.
 * - failNextWithRateLimit: a no-op. The Docker Engine has no rate limiting (no 429, no
 *   Retry-After in the Engine API reference); the retry path for transient Engine failures (503 while
 *   the swarm has no leader) is tested in test/targets/docker-secret.test.ts.
 * - breakAuth: none either (`noAuth`): the Engine socket has no credentials, access is the
 *   socket's file permission (or TLS client certs on tcp, which keyrot does not use).
 *
 * - faults: keyrot reaches the Engine through a loopback front (test/helpers/docker-secret-proxy.ts,
 *   what a docker-socket-proxy is) that answers the fault matrix's faults instead of the Engine.
 *
 * Without an Engine: setup() fails in CI, and otherwise fails with the reason too, because the
 * suite has no way for a harness to skip itself (see `skip` below, for when it does).
 */
const engine = await dockerEngine();

export const harness: ConformanceHarness & { skip?: string } = {
  id: 'docker-secret',
  noAuth: true,
  noEmulator: 'a real Docker Engine: deadline and redirect cases in test/targets/docker-secret-engine.test.ts',
  ...('skip' in engine ? { skip: engine.skip } : {}),
  async setup(opts = {}) {
    if ('skip' in engine) throw new Error(engine.skip);
    const d: TestDocker = engine;
    const proxy = await startEngineProxy(d.host.replace(/^unix:\/\//, ''));
    const p = uniqueName('krc');
    const base = `${p}_openai`;
    const service = `${p}-app`;
    const seeded = new Map<string, string>();
    const config = { secret: base, services: [service], requestTimeout: opts.requestTimeout, timeout: opts.wait };
    const target = await dockerSecret.create(config, testContext({ env: { DOCKER_HOST: proxy.host }, name: 'docker-secret' }));
    const mounted = async () => {
      const svc = await d.service(service);
      const ref = (svc.Spec.TaskTemplate.ContainerSpec.Secrets ?? []).find((r: any) => r.File?.Name === 'openai_api_key');
      return ref ? await d.secret(ref.SecretID) : null;
    };
    return {
      target,
      faults: proxyFaults(proxy),
      async seed(value) {
        // A fresh world each time (the fault matrix seeds once per cell): no service, no secret of the family.
        await d.cleanup(p);
        const id = await d.createSecret(base, value);
        seeded.set(id, value);
        await d.createService(service, [{ secret: base, target: 'openai_api_key', uid: '0', gid: '0', mode: 0o400 }]);
      },
      async peek(candidates) {
        const s = await mounted();
        if (!s) return null;
        if (seeded.has(s.ID)) return seeded.get(s.ID)!;
        const fp = s.Spec.Labels?.['keyrot.fingerprint'];
        return candidates.find((c) => fingerprint(c) === fp) ?? null;
      },
      failNextWithRateLimit() {},
      breakAuth() {},
      // Secrets in the family + the service's version: a no-op write creates neither.
      async writeCount() {
        const secrets = (await d.secrets(base)).length;
        return secrets * 1_000_000 + (await d.service(service)).Version.Index;
      },
      async close() {
        await target.close?.();
        await proxy.close();
        await d.cleanup(p);
        d.close();
      },
    };
  },
};
