import { createHmac, randomBytes } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ExitError, EXIT, TargetError } from '../core/errors.ts';
import { registerSensitive } from '../core/secret.ts';
import { resolveCredential, type CredentialRef } from '../inventory/credentials.ts';

/**
 * The state key: the HMAC-SHA256 key that authenticates keyrot's journal and audit log (and
 * fingerprints `kind: generic` keys). It lives outside the state: anyone who can write the state
 * but not read this key cannot forge an entry that verifies.
 *
 * Where it comes from: `state_key: env:VAR | file:PATH` in targets.yaml; otherwise, in local mode,
 * `$XDG_CONFIG_HOME/keyrot/state.key` (default `~/.config/keyrot/state.key`, the XDG Base
 * Directory location for user configuration), generated on first use; in cluster mode a
 * Kubernetes Secret (state/kubernetes-trust.ts).
 */
export interface StateKey {
  /** 8 hex identifying the key (an HMAC of a constant): says which key authenticated a line. */
  readonly id: string;
  /** For messages: the file, `env:VAR`, or the Secret. */
  readonly where: string;
  /** HMAC-SHA256 of `data` for one purpose (domain-separated), hex. */
  mac(purpose: string, data: string): string;
}

/** A user-chosen key shorter than this is refused: every MAC in the state is an offline guessing oracle. */
export const STATE_KEY_MIN_LENGTH = 32;

export function makeStateKey(material: string, where: string): StateKey {
  const mac = (purpose: string, data: string) => createHmac('sha256', material).update(`${purpose}\0${data}`, 'utf8').digest('hex');
  return { id: mac('keyrot-key-id', '').slice(0, 8), where, mac };
}

/** A key given as text (env, file, Secret): trimmed, long enough, and known to the redactor. */
export function stateKeyFromText(text: string, where: string): StateKey {
  const material = text.trim();
  if (material.length < STATE_KEY_MIN_LENGTH) {
    throw new ExitError(
      EXIT.usage,
      `the state key from ${where} is ${material.length} characters: use at least ${STATE_KEY_MIN_LENGTH} random characters (e.g. the output of \`openssl rand -hex 32\`)`,
    );
  }
  registerSensitive(material);
  return makeStateKey(material, where);
}

/** 32 random bytes as hex: what keyrot generates. */
export function newKeyMaterial(): string {
  return randomBytes(32).toString('hex');
}

/** keyrot's per-user configuration directory (XDG Base Directory: $XDG_CONFIG_HOME, else ~/.config). */
export function configDir(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CONFIG_HOME;
  // The spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
  const base = xdg && xdg.startsWith('/') ? xdg : join(env.HOME || homedir(), '.config');
  return join(base, 'keyrot');
}

/** The configured key (`state_key: env:VAR | file:PATH`): required once configured. */
export async function configuredStateKey(ref: CredentialRef, baseDir: string, env: NodeJS.ProcessEnv): Promise<StateKey> {
  try {
    const secret = await resolveCredential(ref, baseDir, env);
    return stateKeyFromText(secret.reveal(), `state_key ${ref.raw}`);
  } catch (err) {
    if (err instanceof TargetError) throw new ExitError(EXIT.usage, `state_key: ${err.message.replace(/^credential /, '')}`);
    throw err;
  }
}

/**
 * The key file of local mode: read it, or (with `create`) generate it, 0600 in a 0700 directory,
 * and say once where it is. Two processes generating at once: `wx` lets one win; the other reads it.
 */
export async function localKeyFile(path: string, create: boolean, notice: (message: string) => void): Promise<StateKey | null> {
  const read = async () => stateKeyFromText(await readFile(path, 'utf8'), path);
  try {
    return await read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw keyFileError(path, err);
  }
  if (!create) return null;
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const fh = await open(path, 'wx', 0o600);
    try {
      await fh.writeFile(`${newKeyMaterial()}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw keyFileError(path, err);
    return read();
  }
  notice(
    `generated keyrot's state key at ${path} (mode 0600). It authenticates the journal and audit log: ` +
      `back it up (a password manager or secret store) and keep it off the volume that holds the state. ` +
      `Without it, \`keyrot history\` cannot verify the log and resume/revoke refuse authenticated entries. ` +
      `To share it (CI, other operators), set state_key: env:VAR or file:PATH in targets.yaml.`,
  );
  return read();
}

function keyFileError(path: string, err: unknown): ExitError {
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  return new ExitError(
    EXIT.failed,
    `cannot use keyrot's state key at ${path} (${code}): make its directory writable, set XDG_CONFIG_HOME to a writable directory, or set state_key: env:VAR | file:PATH in targets.yaml`,
  );
}

