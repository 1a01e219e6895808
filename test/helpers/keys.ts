import { randomBytes } from 'node:crypto';

/**
 * A key generated at run time: never a realistic key in the repository. The shape follows
 * OpenAI project keys so format checks pass; the content is random and valid nowhere.
 */
export function testKey(prefix = 'sk-proj-'): string {
  return prefix + randomBytes(36).toString('base64url');
}
