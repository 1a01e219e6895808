/**
 * The fleet benchmark's providers, in a process of their own (forked by bench/fleet.ts) so that
 * serving thousands of requests does not take CPU from the keyrot process being measured. Over
 * IPC: `setup` seeds N Heroku apps, Vercel projects and AWS secrets holding the old key, every
 * answer `latencyMs` late; `counts` says how many requests each provider served and the longest
 * per-target chain; `holds` checks every resource holds the key with a given fingerprint.
 */
import { createHash, randomBytes } from 'node:crypto';
import { HerokuEmulator } from '../emulators/heroku/emulator.ts';
import { VercelEmulator } from '../emulators/vercel/server.ts';
import { AwsSecretsManagerEmulator } from '../emulators/aws-secrets-manager/emulator.ts';
import type { RecordedRequest } from '../emulators/server.ts';

export interface FleetSetup {
  perProvider: number;
  latencyMs: number;
  oldKey: string;
  varName: string;
  /** Heroku's token bucket for this run (default Heroku's 4500, 75/min). */
  heroku?: { capacity: number; refillPerMinute: number };
}

export interface FleetEndpoints {
  heroku: { url: string; token: string; apps: string[] };
  vercel: { url: string; token: string; projects: string[] };
  aws: { url: string; region: string; accessKeyId: string; secretAccessKey: string; secrets: string[] };
}

export interface ProviderCounts {
  requests: number;
  /** Requests of the target that needed the most. */
  longestChain: number;
  /** Answers 429 (the provider's rate limit). */
  throttled: number;
}

let heroku: HerokuEmulator | undefined;
let vercel: VercelEmulator | undefined;
let aws: AwsSecretsManagerEmulator | undefined;
const vercelNames = new Map<string, string>();

async function setup(s: FleetSetup): Promise<FleetEndpoints> {
  heroku = new HerokuEmulator({ rateLimit: s.heroku });
  vercel = new VercelEmulator({ rateLimit: { limit: 100_000, windowMs: 60_000 } });
  aws = new AwsSecretsManagerEmulator({ region: 'us-east-1' });
  for (const e of [heroku.server, vercel.server, aws.server]) e.latencyMs = s.latencyMs;
  await heroku.start();
  await vercel.start();
  await aws.start();
  const token = heroku.addToken({ scopes: ['read-protected', 'write-protected'] });
  const vercelToken = `vcp_${randomBytes(16).toString('hex')}`;
  vercel.addToken(vercelToken);
  const ids = Array.from({ length: s.perProvider }, (_, i) => String(i).padStart(4, '0'));
  for (const i of ids) {
    heroku.seedApp(`fleet-app-${i}`, { LOG_LEVEL: 'info', [s.varName]: s.oldKey });
    const p = vercel.seedProject({ name: `fleet-web-${i}`, envs: [{ key: s.varName, value: s.oldKey, type: 'encrypted', target: ['production'] }] });
    vercelNames.set(p.id, p.name);
    aws.seed(`fleet/svc-${i}`, s.oldKey);
  }
  return {
    heroku: { url: heroku.url, token, apps: ids.map((i) => `fleet-app-${i}`) },
    vercel: { url: vercel.url, token: vercelToken, projects: ids.map((i) => `fleet-web-${i}`) },
    aws: { url: aws.url, region: aws.region, ...aws.credentials, secrets: ids.map((i) => `fleet/svc-${i}`) },
  };
}

/** Which target a request served: the app, project or secret it names. */
function countsOf(requests: RecordedRequest[], targetOf: (r: RecordedRequest) => string | undefined): ProviderCounts {
  const per = new Map<string, number>();
  let throttled = 0;
  for (const r of requests) {
    const t = targetOf(r) ?? '(none)';
    per.set(t, (per.get(t) ?? 0) + 1);
    if (r.status === 429) throttled++;
  }
  return { requests: requests.length, longestChain: Math.max(0, ...per.values()), throttled };
}

function counts(): Record<string, ProviderCounts> {
  return {
    heroku: countsOf(heroku!.server.requests, (r) => /^\/apps\/([^/]+)/.exec(r.path)?.[1]),
    vercel: countsOf(vercel!.server.requests, (r) => {
      const id = /^\/v\d+\/projects\/([^/]+)/.exec(r.path)?.[1];
      return id ? (vercelNames.get(id) ?? id) : undefined;
    }),
    aws: countsOf(aws!.server.requests, (r) => (JSON.parse(r.rawBody || '{}') as { SecretId?: string }).SecretId),
  };
}

/** Requests each provider received per second of the run (BENCH_TIMELINE=1): where the wall time went. */
function timeline(): Record<string, number[]> {
  const all = [heroku!, vercel!, aws!].flatMap((e) => e.server.requests.map((r) => r.at));
  const t0 = Math.min(...all);
  const out: Record<string, number[]> = {};
  for (const [name, e] of [['heroku', heroku!], ['vercel', vercel!], ['aws', aws!]] as const) {
    const per: number[] = [];
    for (const r of e.server.requests) {
      const s = Math.floor((r.at - t0) / 1000);
      per[s] = (per[s] ?? 0) + 1;
    }
    out[name] = Array.from(per, (x) => x ?? 0);
  }
  return out;
}

/** How many requests of each kind each provider received (AWS: the action; others: the method). */
function operations(): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [name, e] of [['heroku', heroku!], ['vercel', vercel!], ['aws', aws!]] as const) {
    const ops: Record<string, number> = (out[name] = {});
    for (const r of e.server.requests) {
      const op = String(r.headers['x-amz-target'] ?? r.method).replace(/^secretsmanager\./, '');
      ops[op] = (ops[op] ?? 0) + 1;
    }
  }
  return out;
}

const fp = (v: string | undefined) => (v ? createHash('sha256').update(v).digest('hex').slice(0, 12) : '');

/** Resources that do not hold the key with fingerprint `want`. */
function notHolding(want: string, e: FleetEndpoints, varName: string): string[] {
  const bad: string[] = [];
  for (const a of e.heroku.apps) if (fp(heroku!.getVars(a)[varName]) !== want) bad.push(`heroku ${a}`);
  for (const p of e.vercel.projects) if (fp(vercel!.getEnv(p, varName)[0]?.value) !== want) bad.push(`vercel ${p}`);
  for (const s of e.aws.secrets) if (fp(aws!.value(s)) !== want) bad.push(`aws ${s}`);
  return bad;
}

let endpoints: FleetEndpoints | undefined;
let varName = 'OPENAI_API_KEY';

process.on('message', (m: { cmd: string; setup?: FleetSetup; fingerprint?: string }) => {
  void (async () => {
    if (m.cmd === 'setup') {
      varName = m.setup!.varName;
      endpoints = await setup(m.setup!);
      process.send!({ endpoints });
    } else if (m.cmd === 'counts') {
      process.send!({ counts: counts() });
    } else if (m.cmd === 'timeline') {
      process.send!({ timeline: timeline(), operations: operations() });
    } else if (m.cmd === 'holds') {
      process.send!({ notHolding: notHolding(m.fingerprint!, endpoints!, varName) });
    } else if (m.cmd === 'stop') {
      await Promise.all([heroku?.stop(), vercel?.stop(), aws?.stop()]);
      process.exit(0);
    }
  })();
});
