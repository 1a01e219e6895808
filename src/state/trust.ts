import { join } from 'node:path';
import type { CredentialRef } from '../inventory/credentials.ts';
import { useKeyedFingerprints } from '../core/secret.ts';
import { localAnchors, type AnchorStore, type AnchorUpdate } from './anchor.ts';
import { configDir, configuredStateKey, localKeyFile, type StateKey } from './state-key.ts';
import { printable } from '../core/printable.ts';

/**
 * What makes a state verifiable, kept outside it: the state key (HMAC) and the anchor of the
 * streams' heads. Each store provides one (local: files in the user's config directory; cluster:
 * a Secret and a ConfigMap of their own).
 */
export interface StateTrust {
  /** The state key; `create`: generate it on first use. null when there is none (reads only). */
  key(create: boolean): Promise<StateKey | null>;
  /** Where the key is or would be, for messages. */
  readonly keyWhere: string;
  readonly anchors: AnchorStore;
}

/** Memoises a key lookup: a found key is kept; "none yet" is asked again (a later write may create it). */
export function memoKey(find: (create: boolean) => Promise<StateKey | null>): (create: boolean) => Promise<StateKey | null> {
  let found: StateKey | undefined;
  return async (create) => {
    if (found) return found;
    const k = await find(create);
    if (k) found = k;
    return k;
  };
}

const noticeToStderr = (m: string) => process.stderr.write(printable(`keyrot: ${m}`) + '\n');

/** Local mode: `state_key` when configured, else `<config dir>/state.key`; anchors beside it. */
export function localTrust(opts: {
  stateDir: string;
  ref?: CredentialRef;
  baseDir: string;
  env: NodeJS.ProcessEnv;
  notice?: (message: string) => void;
}): StateTrust {
  const dir = configDir(opts.env);
  const keyFile = join(dir, 'state.key');
  const { ref } = opts;
  return {
    keyWhere: ref ? `state_key ${ref.raw}` : keyFile,
    key: memoKey((create) => (ref ? configuredStateKey(ref, opts.baseDir, opts.env) : localKeyFile(keyFile, create, opts.notice ?? noticeToStderr))),
    anchors: localAnchors(dir, opts.stateDir),
  };
}

let warned = false;

/**
 * Moves the anchor forward. A failure to record it does not fail the write it follows (the entry
 * is written and authenticated); it only weakens truncation detection, so it is said once.
 */
export async function advanceAnchor(trust: StateTrust, u: AnchorUpdate): Promise<void> {
  try {
    await trust.anchors.advance(u);
  } catch (err) {
    if (warned) return;
    warned = true;
    process.stderr.write(
      printable(
        `keyrot: warning: could not record the state's head at ${trust.anchors.where} (${(err as Error).message}): a log cut short will not be detected. Make it writable (or set XDG_CONFIG_HOME).`,
      ) + '\n',
    );
  }
}

/**
 * Fingerprints as the inventory's key kind wants them (core/secret.ts): `generic` keys under the
 * state key (created on first use when `create`), `openai` keys the public SHA-256. Returns false
 * when a generic inventory has no state key yet (and `create` is false): fingerprints are then not
 * comparable with the recorded ones.
 */
export async function useFingerprintsOf(kind: 'openai' | 'generic', trust: StateTrust, create: boolean): Promise<boolean> {
  if (kind !== 'generic') {
    useKeyedFingerprints(null);
    return true;
  }
  const key = await trust.key(create);
  useKeyedFingerprints(key);
  return key !== null;
}
