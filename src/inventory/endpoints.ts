import { z } from 'zod';
import { quoteInput } from '../core/printable.ts';
import type { Inventory } from './load.ts';

/**
 * Where keyrot may send credentials. Every endpoint (a target's `endpoint:`, `key.endpoint`,
 * `key.admin.endpoint`, OPENAI_BASE_URL, the webhook URL...) receives a token or a key, so plain
 * `http://` is refused unless the host is a loopback address: the traffic then never leaves the
 * machine (an emulator, a local proxy). Loopback: 127.0.0.0/8 (RFC 1122 §3.2.1.3), ::1
 * (RFC 4291 §2.5.3) and the name `localhost` (RFC 6761 §6.3).
 */

/** `url`: an API base URL; `host:port`: Google's API endpoint form; `docker-host`: unix:// or tcp:// (DOCKER_HOST). */
export type EndpointForm = 'url' | 'host:port' | 'docker-host';

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  // WHATWG URL parsing normalises IPv4 (127.1, 2130706433 → 127.0.0.1) and IPv6 ([0::1] → [::1]).
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

const HTTPS_ONLY =
  'plain http:// is allowed only to a loopback address (127.0.0.0/8, [::1], localhost): anyone on the way would read the credentials keyrot sends there; use https://';

/**
 * Why keyrot refuses to send credentials to `raw`, or undefined when it may. `shown` names it in
 * the message (default: quoted; a webhook URL, whose path is its secret, passes its host only).
 */
export function endpointProblem(raw: string, form: EndpointForm = 'url', shown = quoteInput(raw)): string | undefined {
  if (form === 'docker-host') return dockerHostProblem(raw, shown);
  if (form === 'host:port' && !/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) return undefined; // host:port: https unless loopback (the adapter decides)
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `${shown} is not a URL (expected https://host/path)`;
  }
  if (url.username || url.password) return 'credentials do not belong in the URL: reference them with token: env:VAR or file:PATH';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') return isLoopbackHost(url.hostname) ? undefined : `${shown}: ${HTTPS_ONLY}`;
  return `${shown} is not an https:// URL`;
}

/** The Docker Engine API over tcp:// is plain HTTP (keyrot does not speak its TLS), and secret values travel in it. */
function dockerHostProblem(raw: string, shown: string): string | undefined {
  const m = /^(tcp|http):\/\/([^/:]+|\[[^\]]+\])/i.exec(raw.trim());
  if (!m || isLoopbackHost(m[2]!)) return undefined; // unix://, loopback, or a form the adapter refuses with its own advice
  return `${shown}: the Docker Engine API over tcp:// is plain HTTP and would carry the key in clear to another host; run keyrot on the manager (unix:///var/run/docker.sock) or forward the socket (ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock manager) and use unix:///tmp/docker.sock`;
}

/** A URL field of targets.yaml that keyrot sends credentials to. */
export const EndpointUrlField = z.string().superRefine((raw, ctx) => {
  const problem = endpointProblem(raw);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** The same rule for an endpoint taken from the environment: a usage error naming the variable. */
export function environmentEndpointProblem(variable: string, raw: string | undefined, form: EndpointForm = 'url', secret = false): string | undefined {
  if (!raw) return undefined;
  const problem = endpointProblem(raw, form, secret ? `the URL (host ${hostOf(raw)})` : undefined);
  return problem && `${variable}: ${problem} (keyrot reads ${variable} from its environment; fix or unset it)`;
}

/**
 * Endpoints the inventory leaves to the environment, checked before anything is contacted:
 * OPENAI_BASE_URL (the live check, where `key.endpoint` is not set), the variables of the target
 * types in use whose `endpoint:` is not set (DOCKER_HOST, AWS_ENDPOINT_URL...), and the webhook URLs
 * when `notify.webhook` or a `watch.webhook` is env:VAR.
 */
export function environmentEndpointProblems(inv: Inventory, env: NodeJS.ProcessEnv): string[] {
  const checks = new Map<string, EndpointForm>();
  for (const e of inv.environments.values()) {
    if (e.key.kind === 'openai' && !e.key.endpoint) checks.set('OPENAI_BASE_URL', 'url');
    for (const t of e.targets) {
      if (t.config.endpoint) continue;
      for (const variable of t.definition.endpoint?.env ?? []) checks.set(variable, t.definition.endpoint?.form ?? 'url');
    }
  }
  const webhooks = [inv.config.notify?.webhook, ...[...inv.environments.values()].map((e) => e.watch?.webhook)];
  const problems = [...checks].flatMap(([variable, form]) => environmentEndpointProblem(variable, env[variable], form) ?? []);
  const webhookVars = new Set(webhooks.flatMap((w) => (w?.kind === 'env' ? [w.name] : [])));
  for (const name of webhookVars) {
    const webhookProblem = environmentEndpointProblem(name, env[name]?.trim(), 'url', true);
    if (webhookProblem) problems.push(webhookProblem);
  }
  return problems;
}

/** The host of a URL whose path and query are secret (a webhook's). */
export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid URL)';
  }
}
