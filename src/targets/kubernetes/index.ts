import { z } from 'zod';
import { defineTarget, WaitTimeout } from '../types.ts';

// Kubernetes name rules: namespaces are DNS-1123 labels, Secret names DNS-1123 subdomains,
// Secret data keys `[-._a-zA-Z0-9]+` (apimachinery validation; the API server answers 422 otherwise).
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DATA_KEY = /^[-._a-zA-Z0-9]+$/;
/** `kind/name` as kubectl takes it: deployment|deploy, statefulset|sts, daemonset|ds (plural and `.apps` too). */
export const WORKLOAD_REF = /^(deployments?|deploy|statefulsets?|sts|daemonsets?|ds)(\.apps)?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** One data key of a Secret; listed workloads are restarted (and waited for) after a change. */
export const KubernetesConfig = z.object({
  namespace: z.string().max(63).regex(DNS_LABEL, 'a namespace name (lowercase letters, digits and -)'),
  secret: z.string().max(253).regex(DNS_SUBDOMAIN, 'a Secret name (lowercase letters, digits, - and .)'),
  /** The data key inside the Secret; default: the target's variable name. */
  key: z.string().max(253).regex(DATA_KEY, 'a Secret data key (letters, digits, -, _ and .)').optional(),
  /** A kubeconfig context; default: the kubeconfig's current context. */
  context: z.string().min(1).optional(),
  restart: z.array(z.string().regex(WORKLOAD_REF, 'kind/name, kind being deployment, statefulset or daemonset')).optional(),
  /** How long to wait for the restarted workloads' rollouts (default 5m). */
  timeout: WaitTimeout.optional(),
});
export type KubernetesConfig = z.infer<typeof KubernetesConfig>;

/** Where the key was written and the Secret's resourceVersion after the write. */
export const KubernetesReceipt = z.object({
  context: z.string(),
  namespace: z.string(),
  secret: z.string(),
  key: z.string(),
  resourceVersion: z.string().nullable(),
  changed: z.boolean(),
});
export type KubernetesReceipt = z.infer<typeof KubernetesReceipt>;

export const kubernetes = defineTarget('kubernetes', {
  schema: KubernetesConfig,
  capabilities: { readBack: 'always', versioned: false },
  receipt: { version: 1, schema: KubernetesReceipt },
  concurrency: 4,
  describe: (c) => `${c.context ? `${c.context}:` : ''}${c.namespace}/${c.secret}${c.key ? `[${c.key}]` : ''}`,
  create: async (config, ctx) => (await import('./adapter.ts')).createKubernetesTarget(config, ctx),
});
