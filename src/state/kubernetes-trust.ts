import type * as K8s from '@kubernetes/client-node';
import type { TargetError } from '../core/errors.ts';
import type { CredentialRef } from '../inventory/credentials.ts';
import { advance, parseAnchors, type AnchorStore, type Anchors } from './anchor.ts';
import { configuredStateKey, newKeyMaterial, stateKeyFromText, type StateKey } from './state-key.ts';
import { memoKey, type StateTrust } from './trust.ts';

/**
 * Cluster mode's trust, in objects of their own so that RBAC can keep them apart from the state
 * ConfigMap: whoever may update `<name>-state` must not be able to read the key nor move the anchor.
 * - the state key: `state_key: env:VAR | file:PATH` when configured (e.g. from a Secret mounted in
 *   the pod), else the Secret `state.key_secret` (default `<name>-state-key`, data key `state.key`),
 *   created on first use with 32 random bytes (hex);
 * - the anchor: ConfigMap `<name>-anchor` (data key `anchors.json`), moved forward with a
 *   resourceVersion-guarded replace (409: re-read and recompute), so racing writers never move it back.
 */

export const KEY_DATA = 'state.key';
const ANCHOR_DATA = 'anchors.json';
const MAX_TRIES = 20;

export interface KubeAccess {
  namespace: string;
  labels: Record<string, string>;
  core(): Promise<K8s.CoreV1Api>;
  /** Per-call request options (timeout). */
  options(): Promise<K8s.ConfigurationOptions>;
  /** An API failure in product words (403 names the grant). */
  failure(err: unknown, verb: string, resource: 'configmaps' | 'secrets', object: string, op: string): Promise<TargetError>;
  statusCode(err: unknown): number | undefined;
  notice(message: string): void;
}

export function kubernetesTrust(
  k: KubeAccess,
  names: { keySecret: string; anchorConfigMap: string },
  configured: { ref?: CredentialRef; baseDir: string; env: NodeJS.ProcessEnv },
): StateTrust {
  const ns = k.namespace;
  const { ref } = configured;
  const secretWhere = `Secret ${ns}/${names.keySecret}`;

  async function secretKey(create: boolean): Promise<StateKey | null> {
    const core = await k.core();
    for (let attempt = 0; attempt < 3; attempt++) {
      let secret: K8s.V1Secret | undefined;
      try {
        secret = await core.readNamespacedSecret({ name: names.keySecret, namespace: ns }, await k.options());
      } catch (err) {
        if (k.statusCode(err) !== 404) throw await k.failure(err, 'get', 'secrets', names.keySecret, 'state key');
      }
      if (secret) {
        const b64 = secret.data?.[KEY_DATA];
        if (!b64) throw new Error(`${secretWhere} has no data key "${KEY_DATA}": put the state key there, or remove the Secret to have keyrot generate one`);
        return stateKeyFromText(Buffer.from(b64, 'base64').toString('utf8'), secretWhere);
      }
      if (!create) return null;
      const body: K8s.V1Secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: { name: names.keySecret, namespace: ns, labels: k.labels },
        data: { [KEY_DATA]: Buffer.from(newKeyMaterial()).toString('base64') },
      };
      try {
        await core.createNamespacedSecret({ namespace: ns, body }, await k.options());
        k.notice(
          `generated keyrot's state key in ${secretWhere}. It authenticates the journal and audit log: back it up ` +
            `(kubectl -n ${ns} get secret ${names.keySecret} -o yaml, into your secret store) and let only keyrot's ServiceAccount ` +
            `(and operators who run \`keyrot history\`) get it; nobody who may update the state ConfigMap should.`,
        );
      } catch (err) {
        // 409: another pod created it first; read theirs.
        if (k.statusCode(err) !== 409) throw await k.failure(err, 'create', 'secrets', names.keySecret, 'state key');
      }
    }
    throw new Error(`${secretWhere} could not be read after it was created`);
  }

  async function readAnchorMap(op: string): Promise<K8s.V1ConfigMap | undefined> {
    const core = await k.core();
    try {
      return await core.readNamespacedConfigMap({ name: names.anchorConfigMap, namespace: ns }, await k.options());
    } catch (err) {
      if (k.statusCode(err) === 404) return undefined;
      throw await k.failure(err, 'get', 'configmaps', names.anchorConfigMap, op);
    }
  }

  /** The anchor ConfigMap as our last write returned it: the next update skips the read (a 409 re-reads). */
  let cached: K8s.V1ConfigMap | undefined;

  /** Read (or the cached copy) → compute → create or replace with its resourceVersion; 409 re-reads. */
  async function update(next: (cur: Anchors | null) => Anchors | null): Promise<void> {
    const core = await k.core();
    for (let attempt = 1; ; attempt++) {
      const cm = cached ?? (await readAnchorMap('anchor'));
      const a = next(parseAnchors(cm?.data?.[ANCHOR_DATA]));
      if (!a) return;
      const data = { [ANCHOR_DATA]: JSON.stringify(a) };
      try {
        if (cm) cached = await core.replaceNamespacedConfigMap({ name: names.anchorConfigMap, namespace: ns, body: { ...cm, data } }, await k.options());
        else {
          const metadata = { name: names.anchorConfigMap, namespace: ns, labels: k.labels };
          cached = await core.createNamespacedConfigMap({ namespace: ns, body: { apiVersion: 'v1', kind: 'ConfigMap', metadata, data } }, await k.options());
        }
        return;
      } catch (err) {
        cached = undefined;
        // 409: changed (or created) by another writer since; 404: deleted since our cached copy.
        const code = k.statusCode(err);
        if ((code !== 409 && !(code === 404 && cm)) || attempt >= MAX_TRIES) throw await k.failure(err, cm ? 'update' : 'create', 'configmaps', names.anchorConfigMap, 'anchor');
      }
    }
  }

  const anchors: AnchorStore = {
    where: `ConfigMap ${ns}/${names.anchorConfigMap}`,
    read: async () => parseAnchors((await readAnchorMap('anchor'))?.data?.[ANCHOR_DATA]),
    advance: (u) => update((cur) => advance(cur, u)),
    reset: (a) => update(() => a),
  };

  return {
    keyWhere: ref ? `state_key ${ref.raw}` : secretWhere,
    key: memoKey((create) => (ref ? configuredStateKey(ref, configured.baseDir, configured.env) : secretKey(create))),
    anchors,
  };
}
