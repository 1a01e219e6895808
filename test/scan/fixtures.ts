import { randomBytes } from 'node:crypto';

/** A legacy-shaped key (`sk-` + 48 alphanumerics), built at run time: never a literal in the repo. */
export function legacyKey(): string {
  const alnum = randomBytes(64).toString('base64').replace(/[^A-Za-z0-9]/g, '');
  return 'sk-' + (alnum.slice(0, 45) + 'aZ7').padEnd(48, 'q');
}
