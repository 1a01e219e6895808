import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { KubernetesEmulator } from '../../emulators/kubernetes/emulator.ts';
import { AwsSecretsManagerEmulator } from '../../emulators/aws-secrets-manager/emulator.ts';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * Child processes the provider SDKs start on their own inherit keyrot's environment: a kubeconfig
 * `exec` plugin (@kubernetes/client-node) and an AWS profile's `credential_process`
 * (@aws-sdk/credential-provider-process). Here both are real scripts that write their whole
 * environment to a file, run by a real `keyrot rotate` whose environment holds the new key
 * (`source: env:`), the admin key, the current key and a provider token. None of them may reach
 * the children.
 */
let dir: string;
const k8s = new KubernetesEmulator({ rolloutDelayMs: 0 });
const aws = new AwsSecretsManagerEmulator({ region: 'us-east-1' });
const oldKey = testKey();
const newKey = testKey();
const adminKey = testKey('sk-admin-');
const herokuToken = `HRKU-${testKey('')}`;
const stateKey = randomBytes(32).toString('hex');
const sameKeyElsewhere = 'MY_COPY_OF_THE_NEW_KEY';

/** A script that dumps its environment to `dump` and prints `output`. */
async function dumpingScript(name: string, dump: string, output: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\nenv > '${dump}'\ncat <<'JSON'\n${output}\nJSON\n`);
  await chmod(path, 0o755);
  return path;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-child-env-'));
  await k8s.start();
  await aws.start();
  k8s.seedSecret('default', 'openai', { OPENAI_API_KEY: oldKey });
  aws.seed('app/openai', oldKey);

  const execPlugin = await dumpingScript(
    'exec-plugin.sh',
    join(dir, 'exec-plugin.env'),
    JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: k8s.token } }),
  );
  const kubeconfig = parse(k8s.kubeconfig());
  kubeconfig.users[0].user = { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: execPlugin, interactiveMode: 'Never' } };
  await writeFile(join(dir, 'kubeconfig'), stringify(kubeconfig), { mode: 0o600 });

  const credentialProcess = await dumpingScript(
    'credential-process.sh',
    join(dir, 'credential-process.env'),
    JSON.stringify({ Version: 1, AccessKeyId: aws.credentials.accessKeyId, SecretAccessKey: aws.credentials.secretAccessKey }),
  );
  await writeFile(join(dir, 'aws-config'), `[profile keyrot-test]\nregion = us-east-1\ncredential_process = ${credentialProcess}\n`);
  await writeFile(join(dir, 'aws-credentials'), '');
  await writeFile(join(dir, 'new.key'), newKey);

  await writeFile(
    join(dir, 'targets.yaml'),
    stringify({
      version: 1,
      key: { source: 'env:KEYROT_NEW_KEY', verify: false, admin: { project: 'proj_x', token: 'env:OPENAI_ADMIN_KEY' } },
      state_key: 'env:KEYROT_STATE_KEY',
      environments: {
        prod: {
          targets: [
            { type: 'kubernetes', namespace: 'default', secret: 'openai' },
            { type: 'aws-secrets-manager', secret: 'app/openai', region: 'us-east-1', endpoint: aws.url },
          ],
        },
      },
    }),
  );
});

afterAll(async () => {
  await k8s.stop();
  await aws.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('child processes started by the SDKs get no key and no credential keyrot read', () => {
  it('a kubeconfig exec plugin and an AWS credential_process, during a real rotation', async () => {
    const r = await runCli(['rotate', '--yes', '--json'], {
      cwd: dir,
      env: {
        KUBECONFIG: join(dir, 'kubeconfig'),
        AWS_PROFILE: 'keyrot-test',
        AWS_CONFIG_FILE: join(dir, 'aws-config'),
        AWS_SHARED_CREDENTIALS_FILE: join(dir, 'aws-credentials'),
        KEYROT_NEW_KEY: newKey,
        [sameKeyElsewhere]: newKey,
        OPENAI_ADMIN_KEY: adminKey,
        OPENAI_API_KEY: oldKey,
        HEROKU_API_KEY: herokuToken,
        KEYROT_STATE_KEY: stateKey,
        KEYROT_CHILD_ENV_MARKER: 'visible',
      },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).outcome).toBe('awaiting-revocation');
    for (const dump of ['exec-plugin.env', 'credential-process.env']) {
      const env = await readFile(join(dir, dump), 'utf8'); // the child ran
      expect(env, dump).toContain('KEYROT_CHILD_ENV_MARKER=visible'); // with keyrot's environment
      for (const [what, value] of Object.entries({ newKey, adminKey, oldKey, herokuToken, stateKey })) expect(env, `${what} in ${dump}`).not.toContain(value);
      for (const name of ['KEYROT_NEW_KEY', sameKeyElsewhere, 'OPENAI_ADMIN_KEY', 'OPENAI_API_KEY', 'HEROKU_API_KEY', 'KEYROT_STATE_KEY']) expect(env, `${name} in ${dump}`).not.toMatch(new RegExp(`^${name}=`, 'm'));
    }
  });
});
