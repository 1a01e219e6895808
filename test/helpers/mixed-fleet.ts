import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { AwsSecretsManagerEmulator } from '../../emulators/aws-secrets-manager/emulator.ts';
import { HerokuEmulator } from '../../emulators/heroku/emulator.ts';
import { KubernetesEmulator } from '../../emulators/kubernetes/emulator.ts';
import { OpenAIEmulator } from '../../emulators/openai/index.ts';
import { VercelEmulator } from '../../emulators/vercel/server.ts';
import { getVar } from '../../src/targets/dotenv/parse.ts';

/**
 * A mixed inventory for whole-CLI crash tests: local files (two .env files, two key files), a
 * versioned vault (AWS Secrets Manager: a plain secret and a JSON field), platforms that
 * redeploy (Heroku releases, Vercel production deployments) and Kubernetes with a rollout, over
 * loopback emulators started once. Every `copy()` is a fresh set of names and secrets on the same
 * emulators, holding a fresh old key, with its own directory, inventory and state.
 * Emulator phases are short (tens of ms): keyrot's first look at a release, deploy or rollout
 * comes 500 ms after it starts (runtime/poll.ts), so each wait costs about that.
 */

const VAR = 'OPENAI_API_KEY';
const AWS_REGION = 'us-east-1';

/** The targets of every copy, by name (the inventory's `name:`). */
export const FLEET_TARGETS = ['app-env', 'worker-env', 'key-file', 'tls-key-file', 'aws-plain', 'aws-json', 'heroku', 'vercel', 'kubernetes', 'kubernetes-jobs'] as const;
export type FleetTarget = (typeof FLEET_TARGETS)[number];
/**
 * What consumers really run: the redeploy targets' running apps (current Heroku release, the
 * Vercel deployment production serves, the Kubernetes pods), and what AWS consumers read
 * (AWSCURRENT: keyrot stages the new key as AWSPENDING and promotes it when verified).
 */
export const FLEET_CONSUMERS = ['heroku', 'vercel', 'kubernetes', 'aws-plain', 'aws-json'] as const;
export type FleetConsumer = (typeof FLEET_CONSUMERS)[number];

export interface FleetCopy {
  dir: string;
  /** Arguments every command of this copy takes: -c and --state-dir. */
  args: string[];
  /** Environment for the CLI: credentials of every emulator. */
  env: Record<string, string>;
  oldKey: string;
  newKey: string;
  /** Where the CLI reads the keys from (`file:` sources): never argv. */
  newKeySource: string;
  oldKeySource: string;
  stateDir: string;
  /**
   * What each target holds now, read from the provider's own state (not through keyrot): for AWS,
   * the version this rotation staged (AWSPENDING) when there is one, else AWSCURRENT.
   */
  holds(): Promise<Record<FleetTarget, string | null>>;
  /** What the consumers run or read now (FLEET_CONSUMERS). */
  running(): Record<FleetConsumer, string | null>;
}

export interface Fleet {
  openai: OpenAIEmulator;
  copy(tag: string, keys: { oldKey: string; newKey: string }): Promise<FleetCopy>;
  stop(): Promise<void>;
}

export async function startFleet(): Promise<Fleet> {
  const root = await mkdtemp(join(tmpdir(), 'keyrot-fleet-'));
  const openai = new OpenAIEmulator();
  const aws = new AwsSecretsManagerEmulator({ region: AWS_REGION });
  const heroku = new HerokuEmulator({ releaseMs: 50 });
  const vercel = await VercelEmulator.start({ queuedMs: 20, buildingMs: 40 });
  const k8s = new KubernetesEmulator({ rolloutDelayMs: 100 });
  await Promise.all([openai.start(), aws.start(), heroku.start(), k8s.start()]);
  const herokuToken = heroku.addToken({ scopes: ['read-protected', 'write-protected'] });
  const vercelToken = `vcp_${randomBytes(16).toString('hex')}`;
  vercel.addToken(vercelToken);
  const kubeconfig = await k8s.writeKubeconfig(join(root, 'kubeconfig'));
  const env = {
    AWS_ACCESS_KEY_ID: aws.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.credentials.secretAccessKey,
    HEROKU_API_KEY: herokuToken,
    VERCEL_TOKEN: vercelToken,
    KUBECONFIG: kubeconfig,
  };

  async function copy(tag: string, keys: { oldKey: string; newKey: string }): Promise<FleetCopy> {
    const { oldKey, newKey } = keys;
    const dir = await mkdtemp(join(root, `${tag}-`));
    const name = `kp-${tag}-${randomBytes(3).toString('hex')}`;
    for (const d of ['app', 'worker', 'secrets']) await mkdir(join(dir, d));
    await writeFile(join(dir, 'app/.env'), `# app\nPORT=3000\n${VAR}=${oldKey}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'worker/.env'), `export ${VAR}="${oldKey}"\nQUEUE=jobs\n`, { mode: 0o600 });
    await writeFile(join(dir, 'secrets/openai_api_key'), oldKey + '\n', { mode: 0o600 });
    await writeFile(join(dir, 'secrets/tls_openai_key'), oldKey, { mode: 0o600 });
    await writeFile(join(dir, 'new-key.txt'), newKey + '\n', { mode: 0o600 });
    await writeFile(join(dir, 'old-key.txt'), oldKey + '\n', { mode: 0o600 });
    aws.seed(`${name}/openai`, oldKey);
    aws.seed(`${name}/config`, { DATABASE_URL: 'postgres://db/app', [VAR]: oldKey });
    heroku.seedApp(name, { WEB_CONCURRENCY: '2', [VAR]: oldKey });
    vercel.seedProject({ name, envs: [{ key: VAR, value: oldKey, type: 'encrypted', target: ['production'] }] });
    k8s.seedSecret(name, 'openai-api-key', { 'api-key': oldKey, other: 'kept' });
    k8s.seedSecret(name, 'jobs-key', { 'api-key': oldKey });
    k8s.seedWorkload('deployment', name, 'api', { replicas: 2 });
    openai.addKey(oldKey);
    openai.addKey(newKey);
    const targets = [
      { type: 'dotenv', name: 'app-env', path: 'app/.env' },
      { type: 'dotenv', name: 'worker-env', path: 'worker/.env' },
      { type: 'file', name: 'key-file', path: 'secrets/openai_api_key' },
      { type: 'file', name: 'tls-key-file', path: 'secrets/tls_openai_key' },
      { type: 'aws-secrets-manager', name: 'aws-plain', secret: `${name}/openai`, region: AWS_REGION, endpoint: aws.url },
      { type: 'aws-secrets-manager', name: 'aws-json', secret: `${name}/config`, region: AWS_REGION, field: VAR, endpoint: aws.url },
      { type: 'heroku', name: 'heroku', app: name, endpoint: heroku.url, timeout: '30s' },
      { type: 'vercel', name: 'vercel', project: name, targets: ['production'], redeploy: true, endpoint: vercel.url, timeout: '30s' },
      { type: 'kubernetes', name: 'kubernetes', namespace: name, secret: 'openai-api-key', key: 'api-key', restart: ['deployment/api'], timeout: '30s' },
      { type: 'kubernetes', name: 'kubernetes-jobs', namespace: name, secret: 'jobs-key', key: 'api-key' },
    ];
    const inventory = {
      version: 1,
      key: { name: VAR, kind: 'openai', source: 'file:new-key.txt', verify: true, endpoint: openai.endpoint },
      revoke: { mode: 'prompt', grace: '0s' },
      environments: { fleet: { targets } },
    };
    await writeFile(join(dir, 'targets.yaml'), stringify(inventory));
    const stateDir = join(dir, '.keyrot');
    const text = (p: string) => readFile(join(dir, p), 'utf8');
    return {
      dir,
      args: ['-c', join(dir, 'targets.yaml'), '--state-dir', stateDir],
      env,
      oldKey,
      newKey,
      newKeySource: 'file:new-key.txt',
      oldKeySource: 'file:old-key.txt',
      stateDir,
      async holds() {
        const staged = (secret: string) => aws.value(secret, 'AWSPENDING') ?? aws.value(secret);
        const json = JSON.parse(staged(`${name}/config`) ?? '{}') as Record<string, string>;
        return {
          'app-env': getVar(await text('app/.env'), VAR),
          'worker-env': getVar(await text('worker/.env'), VAR),
          'key-file': (await text('secrets/openai_api_key')).trim(),
          'tls-key-file': (await text('secrets/tls_openai_key')).trim(),
          'aws-plain': staged(`${name}/openai`) ?? null,
          'aws-json': json[VAR] ?? null,
          heroku: heroku.getVars(name)[VAR] ?? null,
          vercel: vercel.getEnv(name, VAR).find((e) => e.target.includes('production'))?.value ?? null,
          kubernetes: k8s.getSecret(name, 'openai-api-key')?.data['api-key'] ?? null,
          'kubernetes-jobs': k8s.getSecret(name, 'jobs-key')?.data['api-key'] ?? null,
        };
      },
      running() {
        const release = heroku.releases(name).find((r) => r.current);
        // Production serves the newest READY production deployment (its alias moves on READY).
        const live = vercel.deployments(name).find((d) => d.target === 'production' && d.readyState === 'READY');
        return {
          heroku: release?.configVars[VAR] ?? null,
          vercel: live?.snapshot[VAR] ?? null,
          kubernetes: k8s.runningEnv('deployment', name, 'api')?.['api-key'] ?? null,
          'aws-plain': aws.value(`${name}/openai`) ?? null,
          'aws-json': (JSON.parse(aws.value(`${name}/config`) ?? '{}') as Record<string, string>)[VAR] ?? null,
        };
      },
    };
  }

  return {
    openai,
    copy,
    async stop() {
      await Promise.all([openai.stop(), aws.stop(), heroku.stop(), vercel.stop(), k8s.stop()]);
    },
  };
}
