import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { Secret, registerSensitive } from '../core/secret.ts';
import { TargetError } from '../core/errors.ts';
import type { Inventory } from './load.ts';
import { TARGET_TYPES, type TargetType } from '../targets/index.ts';

/**
 * A reference to a credential: `env:VAR` or `file:PATH`, never the secret itself.
 * `fallbackEnv` lists the ecosystem's own variables (HEROKU_API_KEY...) when no `token:` is given.
 */
export type CredentialRef =
  | { kind: 'env'; name: string; raw: string }
  | { kind: 'file'; path: string; raw: string };

export const CREDENTIAL_REF_RE = /^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/;

export function parseCredentialRef(raw: string): CredentialRef | null {
  if (raw.startsWith('env:') && /^[A-Za-z_][A-Za-z0-9_]*$/.test(raw.slice(4))) return { kind: 'env', name: raw.slice(4), raw };
  if (raw.startsWith('file:') && raw.length > 5) return { kind: 'file', path: raw.slice(5), raw };
  return null;
}

/** Resolves a reference when (and only when) a target needs it. Missing ones are TargetError 'auth'. */
export async function resolveCredential(ref: CredentialRef, baseDir: string, env: NodeJS.ProcessEnv): Promise<Secret> {
  if (ref.kind === 'env') {
    const v = env[ref.name];
    if (!v) {
      throw new TargetError(`credential ${ref.raw} is not set: export ${ref.name} in the environment that runs keyrot`, {
        kind: 'auth',
        retryable: false,
      });
    }
    registerSensitive(v.trim());
    return new Secret(v.trim());
  }
  const path = isAbsolute(ref.path) ? ref.path : resolvePath(baseDir, ref.path);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TargetError(
      `credential ${ref.raw} cannot be read (${code === 'ENOENT' ? 'no such file' : code ?? 'error'}): ${path}`,
      { kind: 'auth', retryable: false },
    );
  }
  const v = text.trim();
  if (!v) throw new TargetError(`credential ${ref.raw} is empty: ${path}`, { kind: 'auth', retryable: false });
  registerSensitive(v);
  return new Secret(v);
}

/** `token:` if given, else the first of the ecosystem's variables that is set. */
export function credentialOrDefault(ref: CredentialRef | undefined, envNames: readonly string[], env: NodeJS.ProcessEnv): CredentialRef {
  if (ref) return ref;
  const name = envNames.find((n) => env[n]) ?? envNames[0]!;
  return { kind: 'env', name, raw: `env:${name}` };
}

/** The admin key's conventional variable: withheld from children even when the inventory does not use it. */
const ALWAYS_WITHHELD = ['OPENAI_ADMIN_KEY'];

/**
 * Every environment variable that holds a key or credential keyrot may read: `env:` key sources
 * (the inventory's and `--new-key`/`--old-key`), `key.admin.token`, `notify.webhook`, `state_key`, each
 * target's `token:`, the default token variables of every target type, and the variables named
 * like the key (`key.name`, targets' `var`), which hold the current key by convention. None of
 * them is for a child process (see core/withheld-env.ts). The providers' own SDK credentials
 * (AWS_*, AZURE_*, GOOGLE_*) are not among them: the SDKs and the helpers they start need them.
 */
export function credentialVariables(inv: Inventory, keySources: ReadonlyArray<string | undefined>): string[] {
  const names = new Set<string>([...ALWAYS_WITHHELD, ...Object.values(TARGET_TYPES).flatMap((t: TargetType) => t.credentialEnv ?? [])]);
  const fromSource = (s: string | undefined) => s?.startsWith('env:') && names.add(s.slice(4));
  const fromRef = (r: CredentialRef | undefined) => r?.kind === 'env' && names.add(r.name);
  const { key, notify, state_key: stateKey } = inv.config;
  [key.source, ...keySources].forEach(fromSource);
  fromRef(key.admin?.token);
  fromRef(notify?.webhook);
  fromRef(stateKey);
  names.add(key.name);
  for (const env of inv.environments.values()) {
    fromSource(env.keySource);
    fromRef(env.watch?.webhook);
    for (const t of env.targets) {
      fromRef(t.config.token);
      if (t.config.var) names.add(t.config.var);
    }
  }
  return [...names];
}
