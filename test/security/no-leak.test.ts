import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmuHandler, EmuRequest, EmuResponse, EmulatorServer } from '../../emulators/server.ts';
import { HerokuEmulator } from '../../emulators/heroku/emulator.ts';
import { VercelEmulator } from '../../emulators/vercel/server.ts';
import { NetlifyEmulator } from '../../emulators/netlify/emulator.ts';
import { RailwayEmulator } from '../../emulators/railway/server.ts';
import { AwsSecretsManagerEmulator } from '../../emulators/aws-secrets-manager/emulator.ts';
import { GcpSecretManagerEmulator } from '../../emulators/gcp-secret-manager/emulator.ts';
import { KeyVaultEmulator } from '../../emulators/azure-key-vault/emulator.ts';
import { KubernetesEmulator } from '../../emulators/kubernetes/emulator.ts';
import { loadInventory, selectEnvironment } from '../../src/inventory/load.ts';
import { closeAll, createTargets, type LiveTarget } from '../../src/machine/live-targets.ts';
import { preflightAll } from '../../src/machine/preflight.ts';
import { systemClock } from '../../src/runtime/clock.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { Secret } from '../../src/core/secret.ts';
import { redact } from '../../src/core/redact.ts';
import { runCli } from '../helpers/cli.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * README "Security model" invariant 3, end to end: a provider that answers an error quoting the request it got
 * (the key, in clear or base64 as sent, the old key, the credential) must not make keyrot print,
 * journal or throw any of them. Every provider with a loopback emulator is covered, in process
 * (the thrown error: message, String(), JSON.stringify()) and through the real CLI (stdout,
 * stderr and every file of the state directory).
 */

const VAR = 'OPENAI_API_KEY';
const oldKey = testKey();
const newKey = testKey();

interface Provider {
  type: string;
  server: EmulatorServer;
  /** Credentials this provider's target uses (must never be shown either). */
  tokens: string[];
  target: Record<string, unknown>;
  env: Record<string, string>;
  /** The provider's own error shape carrying `message`. */
  error(message: string): EmuResponse;
  stop(): Promise<void>;
}

const b64 = (s: string, url = false) => Buffer.from(s, 'utf8').toString(url ? 'base64url' : 'base64');

/** Every form a value takes on the wire: clear, base64 (Kubernetes data, GCP payload, Docker), base64url. */
function forms(v: string): Array<[string, string]> {
  return [
    ['clear', v],
    ['base64', b64(v)],
    ['base64url', b64(v, true)],
  ];
}

/**
 * Finds any run of `w` characters of a secret (in any wire form) in `text`: catches a whole
 * value and a partial one (a message cut in the middle of a key before it was redacted). The
 * hint (`sk-proj-...WXYZ`) shares at most 8 characters with the key, so it never matches.
 */
function leaks(text: string, secrets: Record<string, string>, w = 12): string[] {
  const out: string[] = [];
  for (const [label, s] of Object.entries(secrets)) {
    for (const [form, v] of forms(s)) {
      const width = form === 'clear' ? w : w + 4;
      for (let i = 0; i + width <= v.length; i++) {
        if (text.includes(v.slice(i, i + width))) {
          out.push(`${label} (${form}) at ${JSON.stringify(text.slice(Math.max(0, text.indexOf(v.slice(i, i + width)) - 20), text.indexOf(v.slice(i, i + width)) + width + 20))}`);
          break;
        }
      }
    }
  }
  return out;
}

/**
 * Wraps every route of an emulator: a request `when` selects is answered by `respond` instead
 * (the provider echoing the request back in its error). Returns how many were answered so, and
 * a function that removes the wrapper. EmulatorServer keeps its routes in a private array; the
 * test reaches into it so the fault can depend on the request's content (every Railway and AWS
 * call shares one path), which `failNext` cannot express.
 */
function intercept(server: EmulatorServer, when: (req: EmuRequest) => boolean, respond: (req: EmuRequest) => EmuResponse) {
  const routes = (server as unknown as { routes: Array<{ handler: EmuHandler }> }).routes;
  const originals = routes.map((r) => r.handler);
  const state = { hits: 0 };
  routes.forEach((r, i) => {
    r.handler = (req) => {
      if (when(req)) {
        state.hits++;
        return respond(req);
      }
      return originals[i]!(req);
    };
  });
  return {
    get hits() {
      return state.hits;
    },
    remove: () => routes.forEach((r, i) => (r.handler = originals[i]!)),
  };
}

/** The request carries the new key (clear or encoded): it is the write. */
function carriesNewKey(req: EmuRequest): boolean {
  return forms(newKey).some(([, v]) => req.rawBody.includes(v) || req.path.includes(v));
}

/** What a careless provider says: the request it got, its credentials, the value it replaced. */
function echo(req: EmuRequest, p: Provider): string {
  const auth = req.headers.authorization ?? req.headers['project-access-token'] ?? '';
  return `invalid request ${req.method} ${req.path}: ${req.rawBody} (sent with ${String(auth)}; credentials ${p.tokens.join(', ')}; previous value ${oldKey})`;
}

/** Filler that survives the Kubernetes sanitiser (no long token-like runs), to put a key across a cut. */
const filler = (n: number) => 'ab. '.repeat(Math.ceil(n / 4)).slice(0, n);

interface Variant {
  name: string;
  respond(req: EmuRequest, p: Provider): EmuResponse;
}

const VARIANTS: Variant[] = [
  { name: 'provider error quoting the request', respond: (req, p) => p.error(echo(req, p)) },
  { name: 'plain-text body quoting the request', respond: (req, p) => ({ status: 400, headers: { 'content-type': 'text/plain' }, body: echo(req, p) }) },
  // Messages are cut to 120..500 characters in places: a key or a token across the cut must not
  // survive in part (cut first, redacted after: the part no longer matches the whole value).
  ...[120, 200, 240, 300, 500].flatMap((cut): Variant[] => [
    {
      name: `key across a ${cut}-character cut`,
      respond: (_req, p) => p.error(`${filler(cut - 10)}${newKey} ${b64(newKey)} ${p.tokens.join(' ')} ${oldKey}`),
    },
    {
      name: `token across a ${cut}-character cut`,
      respond: (_req, p) => p.error(`${filler(cut - 10)}${p.tokens[0]} ${newKey}`),
    },
  ]),
  // httpJson shows such a body as JSON text: the key starts 29 characters before its 300th.
  {
    name: 'JSON body without a message field (key)',
    respond: (req, p) => ({ status: 400, body: { detail: `${filler(260)}${newKey}`, request: req.rawBody, token: p.tokens, previous: oldKey } }),
  },
  {
    name: 'JSON body without a message field (token)',
    respond: (_req, p) => ({ status: 400, body: { detail: `${filler(270)}${p.tokens[0]}`, key: newKey } }),
  },
];

// ---------------------------------------------------------------------------------- providers

async function heroku(): Promise<Provider> {
  const emu = new HerokuEmulator({ releaseMs: 10 });
  await emu.start();
  const token = emu.addToken({ scopes: ['read-protected', 'write-protected'] });
  emu.seedApp('leak-app', { OTHER: '1', [VAR]: oldKey });
  return {
    type: 'heroku',
    server: emu.server,
    tokens: [token],
    target: { type: 'heroku', name: 'heroku', app: 'leak-app', endpoint: emu.url, token: 'env:LEAK_HEROKU_TOKEN' },
    env: { LEAK_HEROKU_TOKEN: token },
    error: (message) => ({ status: 422, body: { id: 'invalid_params', message } }),
    stop: () => emu.stop(),
  };
}

async function vercel(): Promise<Provider> {
  const emu = await VercelEmulator.start({ queuedMs: 10, buildingMs: 10 });
  const token = `vcp_${randomBytes(16).toString('hex')}`;
  emu.addToken(token);
  emu.seedProject({ name: 'leak-project', envs: [{ key: VAR, value: oldKey, type: 'encrypted', target: ['production'] }] });
  return {
    type: 'vercel',
    server: emu.server,
    tokens: [token],
    target: { type: 'vercel', name: 'vercel', project: 'leak-project', endpoint: emu.url, token: 'env:LEAK_VERCEL_TOKEN' },
    env: { LEAK_VERCEL_TOKEN: token },
    error: (message) => ({ status: 400, body: { error: { code: 'bad_request', message } } }),
    stop: () => emu.stop(),
  };
}

async function netlify(): Promise<Provider> {
  const emu = new NetlifyEmulator({ phaseMs: 10 });
  await emu.start();
  const token = emu.addToken();
  const site = emu.seedSite({ name: 'leak-site', account: 'leak-team', env: [{ key: VAR, values: [{ context: 'production', value: oldKey }] }] });
  return {
    type: 'netlify',
    server: emu.server,
    tokens: [token],
    target: { type: 'netlify', name: 'netlify', site: site.id, context: 'production', endpoint: emu.url, token: 'env:LEAK_NETLIFY_TOKEN' },
    env: { LEAK_NETLIFY_TOKEN: token },
    error: (message) => ({ status: 422, body: { code: 422, message } }),
    stop: () => emu.stop(),
  };
}

async function railway(): Promise<Provider> {
  const emu = await RailwayEmulator.start({ phaseMs: 10 });
  const token = randomBytes(16).toString('hex');
  emu.addAccountToken(token);
  const seeded = emu.seedProject({
    name: 'leak',
    environments: [{ name: 'production' }],
    services: [{ name: 'api' }],
    variables: { production: { api: { [VAR]: oldKey, PORT: '8080' } } },
  });
  return {
    type: 'railway',
    server: emu.server,
    tokens: [token],
    target: {
      type: 'railway',
      name: 'railway',
      project: seeded.id,
      environment: seeded.environments.production,
      service: seeded.services.api,
      endpoint: emu.graphqlUrl,
      token: 'env:LEAK_RAILWAY_TOKEN',
    },
    env: { LEAK_RAILWAY_TOKEN: token },
    // GraphQL errors come with HTTP 200.
    error: (message) => ({ status: 200, body: { errors: [{ message }], data: null } }),
    stop: () => emu.stop(),
  };
}

async function aws(): Promise<Provider> {
  const emu = new AwsSecretsManagerEmulator({ region: 'us-east-1' });
  await emu.start();
  emu.seed('leak/openai-api-key', oldKey);
  return {
    type: 'aws-secrets-manager',
    server: emu.server,
    tokens: [emu.credentials.secretAccessKey],
    target: { type: 'aws-secrets-manager', name: 'aws', secret: 'leak/openai-api-key', region: 'us-east-1', endpoint: emu.url },
    env: {
      AWS_ACCESS_KEY_ID: emu.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: emu.credentials.secretAccessKey,
      AWS_REGION: 'us-east-1',
    },
    error: (message) => ({
      status: 400,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-ErrorType': 'ValidationException:http://internal.amazon.com/coral/com.amazonaws.secretsmanager/' },
      body: { __type: 'ValidationException', message },
    }),
    stop: () => emu.stop(),
  };
}

async function gcp(): Promise<Provider> {
  const emu = new GcpSecretManagerEmulator();
  await emu.start();
  emu.seed('leak-project', 'openai-api-key', oldKey);
  return {
    type: 'gcp-secret-manager',
    server: emu.server,
    tokens: [emu.token],
    target: { type: 'gcp-secret-manager', name: 'gcp', project: 'leak-project', secret: 'openai-api-key', endpoint: emu.endpoint, token: 'env:LEAK_GCP_TOKEN' },
    env: { LEAK_GCP_TOKEN: emu.token },
    error: (message) => ({ status: 400, body: { error: { code: 400, message, status: 'INVALID_ARGUMENT' } } }),
    stop: () => emu.stop(),
  };
}

async function azure(dir: string): Promise<Provider> {
  const emu = new KeyVaultEmulator({ vaultName: 'leak' });
  const vaultUrl = await emu.start();
  emu.seed('openai-api-key', oldKey);
  const caPath = join(dir, 'akv-ca.pem');
  await writeFile(caPath, emu.caPem, { mode: 0o600 });
  return {
    type: 'azure-key-vault',
    server: emu.server,
    tokens: [emu.token],
    target: { type: 'azure-key-vault', name: 'azure', vault: `${vaultUrl}/`, secret: 'openai-api-key', token: 'env:LEAK_AZURE_TOKEN' },
    env: { LEAK_AZURE_TOKEN: emu.token, NODE_EXTRA_CA_CERTS: caPath },
    error: (message) => ({ status: 400, body: { error: { code: 'BadParameter', message } } }),
    stop: () => emu.stop(),
  };
}

async function kubernetes(dir: string): Promise<Provider> {
  const emu = new KubernetesEmulator();
  await emu.start();
  emu.seedSecret('default', 'openai-api-key', { 'api-key': oldKey, other: 'x' });
  const kubeconfig = await emu.writeKubeconfig(join(dir, 'kubeconfig'));
  return {
    type: 'kubernetes',
    server: emu.server,
    tokens: [emu.token],
    target: { type: 'kubernetes', name: 'kubernetes', namespace: 'default', secret: 'openai-api-key', key: 'api-key' },
    env: { KUBECONFIG: kubeconfig },
    error: (message) => ({
      status: 422,
      body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'Invalid', code: 422 },
    }),
    stop: () => emu.stop(),
  };
}

// ---------------------------------------------------------------------------------- fixture

let dir: string;
let providers: Provider[] = [];
let env: Record<string, string> = {};
let secrets: Record<string, string> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-noleak-'));
  providers = await Promise.all([heroku(), vercel(), netlify(), railway(), aws(), gcp(), azure(dir), kubernetes(dir)]);
  env = Object.assign(
    {
      KEYROT_NEW_KEY: newKey,
      // The AWS SDK must not pick up the machine's own configuration.
      AWS_CONFIG_FILE: join(dir, 'no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials'),
    },
    ...providers.map((p) => p.env),
  );
  secrets = { 'new key': newKey, 'old key': oldKey };
  for (const p of providers) p.tokens.forEach((t, i) => (secrets[`${p.type} token ${i + 1}`] = t));
  const inventory = {
    version: 1,
    key: { name: VAR, kind: 'openai', source: 'env:KEYROT_NEW_KEY', verify: false },
    revoke: { mode: 'prompt', grace: '0s' },
    environments: { prod: { targets: providers.map((p) => p.target) } },
  };
  await writeFile(join(dir, 'targets.yaml'), stringify(inventory));
});

afterAll(async () => {
  await Promise.all(providers.map((p) => p.stop()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function liveTargets(): Promise<LiveTarget[]> {
  const inv = await loadInventory(join(dir, 'targets.yaml'));
  const e = selectEnvironment(inv, 'prod');
  return createTargets({ inventory: inv, env: e, processEnv: env, clock: systemClock, logger: silentLogger });
}

/** Everything an error shows when printed, logged or serialised (not util.inspect: it walks `cause`, which keyrot never prints). */
function rendered(err: unknown): string {
  const e = err as Error;
  return [e?.message, String(err), JSON.stringify(err), JSON.stringify(Object.entries(e ?? {}))].join('\n');
}

describe('invariant 3: no key or credential in errors (providers echoing the request)', () => {
  it('the redactor knows the wire forms of a key (clear, base64, base64url)', () => {
    const k = testKey();
    new Secret(k);
    for (const [form, v] of forms(k)) expect(leaks(redact(`x ${v} y`), { k }), form).toEqual([]);
  });

  it('every provider translates an echoing error without the key, the old key or its token', async () => {
    const targets = await liveTargets();
    try {
      const pre = await preflightAll(targets, { clock: systemClock });
      for (const [name, r] of pre) expect(r.status, `${name}: ${r.reason}`).toBe('ready');
      const value = new Secret(newKey);
      const problems: string[] = [];
      for (const p of providers) {
        const lt = targets.find((t) => t.spec.config.name === p.target.name || t.spec.name === p.target.name)!;
        expect(lt?.target, p.type).toBeDefined();
        for (const v of VARIANTS) {
          const hook = intercept(p.server, carriesNewKey, (req) => v.respond(req, p));
          let thrown: unknown;
          try {
            await lt.target!.write(value, { rotationId: `r-noleak-${randomBytes(3).toString('hex')}`, fingerprint: value.fingerprint });
          } catch (err) {
            thrown = err;
          } finally {
            hook.remove();
          }
          expect(hook.hits, `${p.type} / ${v.name}: the echo was served`).toBeGreaterThan(0);
          expect(thrown, `${p.type} / ${v.name}: the write failed`).toBeDefined();
          for (const l of leaks(rendered(thrown), secrets)) problems.push(`${p.type} / ${v.name}: ${l}`);
        }
      }
      expect(problems).toEqual([]);
    } finally {
      await closeAll(targets);
    }
  }, 120_000);

  it('a read whose error quotes the token and the current key leaves the preflight reason clean', async () => {
    const targets = await liveTargets();
    const hooks = providers.map((p) => intercept(p.server, () => true, (req) => p.error(echo(req, p))));
    try {
      const pre = await preflightAll(targets, { clock: systemClock });
      const problems: string[] = [];
      for (const [name, r] of pre) {
        for (const l of leaks(JSON.stringify(r) + (r.reason ?? ''), secrets)) problems.push(`${name}: ${l}`);
      }
      expect(hooks.every((h) => h.hits > 0)).toBe(true);
      expect(problems).toEqual([]);
    } finally {
      hooks.forEach((h) => h.remove());
      await closeAll(targets);
    }
  }, 60_000);
});

async function filesUnder(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const p = join(root, name);
    if ((await stat(p)).isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

describe('invariant 3 through the CLI (stdout, stderr, state directory)', () => {
  it('rotate against providers that echo the write keeps every key and token out of the output and the state', async () => {
    const stateDir = join(dir, 'state-rotate');
    const hooks = providers.map((p) => intercept(p.server, carriesNewKey, (req) => p.error(echo(req, p))));
    try {
      const r = await runCli(['rotate', '--yes', '--json', '--state-dir', stateDir], { cwd: dir, env });
      expect(hooks.every((h) => h.hits > 0), r.stderr).toBe(true);
      // Every write was refused: the rotation fails and every target is back on the old key.
      expect(r.code, r.stderr).toBe(1);
      expect(JSON.parse(r.stdout).outcome).toBe('failed');
      const problems = leaks(`${r.stdout}\n${r.stderr}`, secrets).map((l) => `output: ${l}`);
      for (const f of await filesUnder(stateDir)) problems.push(...leaks(await readFile(f, 'utf8'), secrets).map((l) => `${f}: ${l}`));
      const h = await runCli(['history', '--json', '--state-dir', stateDir], { cwd: dir, env });
      problems.push(...leaks(`${h.stdout}\n${h.stderr}`, secrets).map((l) => `history: ${l}`));
      expect(problems).toEqual([]);
    } finally {
      hooks.forEach((h) => h.remove());
    }
  }, 120_000);

  it('plan against providers whose every answer quotes the token and the current key prints neither', async () => {
    const hooks = providers.map((p) => intercept(p.server, () => true, (req) => p.error(echo(req, p))));
    try {
      for (const args of [['plan'], ['plan', '--json'], ['verify']]) {
        const r = await runCli([...args, '--state-dir', join(dir, 'state-plan')], { cwd: dir, env });
        expect(r.code, r.stderr).toBe(1);
        expect(leaks(`${r.stdout}\n${r.stderr}`, secrets), args.join(' ')).toEqual([]);
      }
      expect(hooks.every((h) => h.hits > 0)).toBe(true);
    } finally {
      hooks.forEach((h) => h.remove());
    }
  }, 120_000);
});

describe('invariant 3: the notification webhook URL (its path is its secret)', () => {
  async function freePort(): Promise<number> {
    const { createServer } = await import('node:net');
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const port = (s.address() as { port: number }).port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }

  async function rotateWithWebhook(url: string, label: string): Promise<string[]> {
    const wd = await mkdtemp(join(tmpdir(), 'keyrot-noleak-hook-'));
    try {
      const current = testKey();
      const next = testKey();
      await writeFile(join(wd, 'key'), current, { mode: 0o600 });
      await writeFile(
        join(wd, 'targets.yaml'),
        stringify({
          version: 1,
          key: { name: VAR, kind: 'openai', source: 'env:KEYROT_NEW_KEY', verify: false },
          notify: { webhook: 'env:KEYROT_WEBHOOK_URL' },
          environments: { prod: { targets: [{ type: 'file', name: 'key-file', path: 'key' }] } },
        }),
      );
      const r = await runCli(['rotate', '--yes'], { cwd: wd, env: { KEYROT_NEW_KEY: next, KEYROT_WEBHOOK_URL: url } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr, 'the failed webhook is reported').toMatch(/webhook/);
      const secretPath = new URL(url).pathname.split('/').pop()!;
      const found = leaks(`${r.stdout}\n${r.stderr}`, { [`${label} webhook path`]: secretPath, 'new key': next, 'old key': current });
      for (const f of await filesUnder(join(wd, '.keyrot'))) found.push(...leaks(await readFile(f, 'utf8'), { 'webhook path': secretPath }).map((l) => `${f}: ${l}`));
      return found;
    } finally {
      await rm(wd, { recursive: true, force: true });
    }
  }

  it('an unreachable webhook is reported by host only, even when its URL has a query string', async () => {
    const url = `http://127.0.0.1:${await freePort()}/services/T0/${randomBytes(18).toString('base64url')}?source=keyrot`;
    expect(await rotateWithWebhook(url, 'unreachable')).toEqual([]);
  }, 60_000);

  it('a webhook that answers an error quoting its own URL does not get it printed', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: `no_service for ${req.url} (${req.headers.host}${req.url})` }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as { port: number }).port;
      const url = `http://127.0.0.1:${port}/services/T0/${randomBytes(18).toString('base64url')}`;
      expect(await rotateWithWebhook(url, 'echoing')).toEqual([]);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 60_000);
});

describe('invariant 3: child processes (git) get no key or credential in argv or environment', () => {
  it('plan and emergency run git with an environment and argv free of keys and tokens', async () => {
    const { execFileSync } = await import('node:child_process');
    const { chmod, mkdir } = await import('node:fs/promises');
    const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
    const wd = await mkdtemp(join(tmpdir(), 'keyrot-noleak-git-'));
    try {
      // A `git` first on PATH that records its environment and arguments, then runs the real git.
      const bin = join(wd, 'bin');
      await mkdir(bin);
      const dump = join(wd, 'git-calls.txt');
      await writeFile(join(bin, 'git'), `#!/bin/sh\n{ echo "--- argv: $*"; env; } >> "${dump}"\nexec "${realGit}" "$@"\n`, { mode: 0o755 });
      await chmod(join(bin, 'git'), 0o755);
      const repo = join(wd, 'repo');
      await mkdir(repo);
      execFileSync(realGit, ['init', '-q', repo]);
      await writeFile(join(repo, '.env'), `${VAR}=${oldKey}\n`, { mode: 0o600 });
      const p = providers.find((x) => x.type === 'heroku')!;
      await writeFile(
        join(repo, 'targets.yaml'),
        stringify({
          version: 1,
          key: { name: VAR, kind: 'openai', source: 'env:KEYROT_NEW_KEY', verify: false },
          environments: { prod: { targets: [{ type: 'dotenv', name: 'env-file', path: '.env' }, p.target] } },
        }),
      );
      const runEnv = { ...p.env, KEYROT_NEW_KEY: newKey, PATH: `${bin}:${process.env.PATH ?? ''}` };
      const plan = await runCli(['plan'], { cwd: repo, env: runEnv });
      expect(plan.stderr + plan.stdout).toMatch(/not ignored|\.gitignore/);
      const em = await runCli(['emergency', '--yes', '--reason', 'no-leak test'], { cwd: repo, env: runEnv });
      expect([0, 1], em.stderr).toContain(em.code);
      const calls = await readFile(dump, 'utf8');
      expect(calls, "plan checked the .env with git").toMatch(/--- argv: .*check-ignore/);
      expect(calls, "emergency scanned the work tree with git").toMatch(/--- argv: ls-files -co/);
      expect(leaks(calls, { 'new key': newKey, 'old key': oldKey, 'heroku token': p.tokens[0]! })).toEqual([]);
    } finally {
      await rm(wd, { recursive: true, force: true });
    }
  }, 60_000);
});
