import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isIPv6 } from 'node:net';
import { delimiter, join } from 'node:path';
import type { Cluster, Context, KubeConfig, User } from '@kubernetes/client-node';
import { TargetError } from '../../core/errors.ts';
import { registerSensitive } from '../../core/secret.ts';

type K8s = typeof import('@kubernetes/client-node');

/** Where a pod's service account is mounted (client-go rest.InClusterConfig, client-node config.ts). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface LoadedKubeConfig {
  kc: KubeConfig;
  /** Where the configuration came from, for messages. */
  source: string;
  /** The context in use ("in-cluster" for the service account). */
  context: string;
  server: string;
}

export interface KubeConfigOptions {
  /** The target's `context:`; default: the kubeconfig's current-context. */
  context?: string;
  /** The environment keyrot runs with (ctx.env, not process.env). */
  env: NodeJS.ProcessEnv;
  target: string;
  /** Tests point this at a temp dir. */
  serviceAccountDir?: string;
}

/**
 * Chooses the cluster the way kubectl does, reading ctx.env rather than process.env (client-node's
 * `loadFromDefault` and `loadFromCluster` read process.env, which keyrot does not use):
 * 1. `KUBECONFIG` (a path list): every existing file, merged with client-go's rule that the first
 *    file to define a name or a current-context wins (client-node's `mergeConfig` instead throws on
 *    duplicate names and lets a later file's current-context win);
 * 2. else `~/.kube/config` when it exists;
 * 3. else, in a pod (`KUBERNETES_SERVICE_HOST` and `_PORT` set), the mounted service account:
 *    `https://host:port`, its `ca.crt` and its `token` file (re-read every minute by client-node's
 *    FileAuth, which follows the projected token's rotation).
 * Then `context:` (or the current context) is selected.
 */
export function loadKubeConfig(k8s: K8s, opts: KubeConfigOptions): LoadedKubeConfig {
  const env = opts.env;
  const fail = (message: string, kind: 'auth' | 'invalid' = 'invalid') =>
    new TargetError(message, { target: opts.target, op: 'connect', kind, retryable: false });
  const load = (file: string): KubeConfig => {
    const kc = new k8s.KubeConfig();
    try {
      kc.loadFromFile(file);
    } catch (err) {
      throw fail(`cannot load kubeconfig ${file}: ${(err as Error).message.split('\n')[0]}`);
    }
    return kc;
  };

  let kc: KubeConfig;
  let source: string;
  if (env.KUBECONFIG) {
    const files = env.KUBECONFIG.split(delimiter).filter(Boolean);
    const present = files.filter((f) => existsSync(f));
    if (present.length === 0) throw fail(`KUBECONFIG names ${files.join(', ')}, and none of these files exists`);
    const clusters: Cluster[] = [];
    const users: User[] = [];
    const contexts: Context[] = [];
    let current: string | undefined;
    for (const f of present) {
      const part = load(f);
      for (const c of part.getClusters()) if (!clusters.some((x) => x.name === c.name)) clusters.push(c);
      for (const u of part.getUsers()) if (!users.some((x) => x.name === u.name)) users.push(u);
      for (const c of part.getContexts()) if (!contexts.some((x) => x.name === c.name)) contexts.push(c);
      current ||= part.getCurrentContext() || undefined;
    }
    kc = new k8s.KubeConfig();
    kc.loadFromOptions({ clusters, users, contexts, currentContext: current });
    source = `KUBECONFIG=${present.join(delimiter)}`;
  } else {
    const home = env.HOME || env.USERPROFILE || homedir();
    const file = join(home, '.kube', 'config');
    if (existsSync(file)) {
      kc = load(file);
      source = file;
    } else if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) {
      if (opts.context) {
        throw fail(`context "${opts.context}" was given but there is no kubeconfig (KUBECONFIG unset, ${file} missing); in a pod keyrot uses the service account: remove context: or provide a kubeconfig`);
      }
      const dir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
      const tokenFile = join(dir, 'token');
      if (!existsSync(tokenFile)) {
        throw fail(`keyrot runs in a pod (KUBERNETES_SERVICE_HOST is set) but no service account token is mounted at ${tokenFile}: enable automountServiceAccountToken or provide a kubeconfig`, 'auth');
      }
      registerSensitive(readFileSync(tokenFile, 'utf8').trim());
      const host = isIPv6(env.KUBERNETES_SERVICE_HOST) ? `[${env.KUBERNETES_SERVICE_HOST}]` : env.KUBERNETES_SERVICE_HOST;
      kc = new k8s.KubeConfig();
      kc.loadFromOptions({
        // client-go always dials https in-cluster; client-node switches to http on ports 80/8080/8001
        // and would then refuse the plain-HTTP server without skipTLSVerify.
        clusters: [{ name: 'in-cluster', server: `https://${host}:${env.KUBERNETES_SERVICE_PORT}`, caFile: join(dir, 'ca.crt'), skipTLSVerify: false }],
        users: [{ name: 'service-account', authProvider: { name: 'tokenFile', config: { tokenFile } } }],
        contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'service-account' }],
        currentContext: 'in-cluster',
      });
      source = `the pod's service account (${dir})`;
    } else {
      throw fail(
        `no Kubernetes configuration: KUBECONFIG is not set, ${file} does not exist and keyrot is not running in a pod (KUBERNETES_SERVICE_HOST is not set); point KUBECONFIG at a kubeconfig file`,
        'auth',
      );
    }
  }

  if (opts.context) {
    if (!kc.getContextObject(opts.context)) {
      const names = kc.getContexts().map((c) => c.name);
      throw fail(`the kubeconfig (${source}) has no context "${opts.context}"${names.length ? ` (it has: ${names.join(', ')})` : ''}`);
    }
    kc.setCurrentContext(opts.context);
  }
  const context = kc.getCurrentContext();
  if (!context || !kc.getContextObject(context)) {
    throw fail(`the kubeconfig (${source}) has no current-context${context ? ` named "${context}"` : ''}: set context: in the target or run kubectl config use-context`);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw fail(`context "${context}" of the kubeconfig (${source}) names a cluster that the kubeconfig does not define`);
  // client-node 2.x refuses plain HTTP unless the cluster skips TLS verification (config.ts
  // createDispatcherOptions); say so before the first call rather than failing in the middle.
  if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify) {
    throw fail(`context "${context}" uses a plain-HTTP server (${cluster.server}), which the Kubernetes client refuses unless the cluster sets insecure-skip-tls-verify: true`);
  }
  const user = kc.getCurrentUser();
  if (user?.token) registerSensitive(user.token);
  if (user?.password) registerSensitive(user.password);
  return { kc, source, context, server: cluster.server };
}
