// Seeds the `local` environment of the shipped targets.yaml (run by `npm install` through the
// `prepare` script): sandbox/.env and sandbox/openai_api_key holding a throw-away key generated
// here, so `keyrot rotate -e local` has a current key to replace. Both files are git-ignored.
// Existing files are never touched. Plain JS: it runs on whatever Node npm uses.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'sandbox');
const envFile = join(dir, '.env');
const keyFile = join(dir, 'openai_api_key');
if (!existsSync(envFile) && !existsSync(keyFile)) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = 'sk-proj-' + randomBytes(36).toString('base64url');
  writeFileSync(
    envFile,
    '# keyrot local sandbox (git-ignored): a throw-away key, valid nowhere.\n' +
      '# Try: npx keyrot plan -e local\n' +
      'APP_PORT=3000\n' +
      `OPENAI_API_KEY=${key}\n`,
    { mode: 0o600 },
  );
  writeFileSync(keyFile, key, { mode: 0o600 });
  process.stdout.write('keyrot: seeded the local sandbox (sandbox/.env, sandbox/openai_api_key) with a throw-away key\n');
}
