import { randomBytes } from 'node:crypto';

/**
 * A throw-away key for the demo and the emulators, generated at run time (never a real key, never
 * stored in the repository). Shaped like an OpenAI project key so format checks apply.
 */
export function generateKey(prefix = 'sk-proj-'): string {
  return prefix + randomBytes(36).toString('base64url');
}

/** A throw-away provider token for an emulator. */
export function generateToken(prefix = 'emu_'): string {
  return prefix + randomBytes(18).toString('hex');
}
