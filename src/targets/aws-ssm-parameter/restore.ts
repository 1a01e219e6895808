import type { ParameterHistory } from '@aws-sdk/client-ssm';
import type { Secret } from '../../core/secret.ts';
import type { TargetError } from '../../core/errors.ts';
import type { OpContext } from '../types.ts';
import type { AwsSsmParameterReceipt } from './index.ts';
import type { ParameterStoreCalls } from './store.ts';
import { describeHeld, holds, holdsNewKey, valueOf } from './versions.ts';

/** Rollback of a parameter: nothing in its history is deleted unless all of it is this rotation's. */

export interface RestoreDeps {
  store: ParameterStoreCalls;
  name: string;
  /** `name`, or `name:LABEL`: what consumers read. */
  selector: string;
  putOptions: (latest: ParameterHistory | undefined) => { Type: 'SecureString'; KeyId?: string; Tier?: 'Standard' | 'Advanced' };
  /** The newest version holding the value (decrypted history). */
  versionHolding: (value: Secret | null, op: string, signal?: AbortSignal) => Promise<number | null>;
  problem: (message: string, op: string, kind: TargetError['kind']) => TargetError;
}

/** Without a label: the old value goes back as a new version (history is never deleted). */
export async function restoreLatest(d: RestoreDeps, previous: Secret | null, op: OpContext): Promise<void> {
  const { store, name, putOptions, problem } = d;
  const signal = op.signal;
  const history = await store.history('restore', { decrypt: true, signal });
  const latest = history?.at(-1);
  if (!latest || holds(latest, previous)) return; // already back (or nothing was ever written)
  if (!holdsNewKey(latest, op)) {
    throw problem(`${name} changed since keyrot wrote it: it holds ${describeHeld(valueOf(latest))}, neither the new key nor the old one; keyrot leaves it as it is`, 'restore', 'conflict');
  }
  if (previous) {
    await store.put({ Value: previous.reveal(), ...putOptions(latest), Overwrite: true }, 'restore', signal);
    return;
  }
  // The parameter did not exist before: it is removed only when every version is this
  // rotation's key (nothing else's history goes with it).
  if (!history!.every((h) => holdsNewKey(h, op))) {
    throw problem(`${name} had no value before this rotation but has other versions now; keyrot does not delete history: remove the parameter yourself if it should not exist`, 'restore', 'unsupported');
  }
  await store.remove('restore', signal);
}

/** With a label: the label goes back to the version holding the old value (or off, when it did not exist). */
export async function restoreLabel(d: RestoreDeps, label: string, previous: Secret | null, op: OpContext, receipt: AwsSsmParameterReceipt | undefined): Promise<void> {
  const { store, name, selector, putOptions, versionHolding } = d;
  const signal = op.signal;
  const live = await store.get(selector, 'restore', { signal });
  if (holds(live, previous)) return;
  if (!previous) {
    if (live && holdsNewKey(live, op)) await store.unlabel(live.Version!, label, 'restore', signal);
    return;
  }
  let back = receipt?.previousVersion ?? null;
  if (back === null || !holds(await store.get(`${name}:${back}`, 'restore', { signal }), previous)) back = await versionHolding(previous, 'restore', signal);
  if (back === null) {
    // The old version is gone (the 100-version limit): it comes back as a new version.
    const latest = (await store.history('restore', { signal }))?.at(-1);
    back = await store.put({ Value: previous.reveal(), ...putOptions(latest), Overwrite: true }, 'restore', signal);
  }
  await store.label(back, label, 'restore', signal);
}
