import type { DiscoverContext, DiscoverResult, TargetDefinition, TargetId } from './types.ts';

/**
 * What keyrot knows of a target type without loading its definition (its zod schemas): the facts
 * commands need for every type (credentials to withhold, which types can be discovered, where a
 * local target writes), and how to load the definition. Nothing here imports zod or a target's
 * folder: a command loads the definitions of the types its inventory uses, and only those.
 */
export interface TargetType<C = any> {
  /**
   * The ecosystem's variables keyrot reads the target's token from when `token:` is not given
   * (HEROKU_API_KEY...). Like every credential keyrot reads, they are withheld from child processes.
   */
  readonly credentialEnv?: readonly string[];
  /**
   * The local file this target writes the key into (as configured, relative to targets.yaml), for
   * `plan`'s git check and the leak scanner; absent for targets that keep the key elsewhere.
   */
  localFile?(config: C): string | undefined;
  /**
   * `keyrot discover`: every place of this provider the credentials reach that holds one of the
   * variables (read-only, paced like rotations). Absent when the provider cannot be listed. Throws
   * a TargetError of kind `auth` when credentials are missing or refused (the provider is then
   * reported as skipped, with the reason).
   */
  discover?(ctx: DiscoverContext): Promise<DiscoverResult>;
  /** The definition (schemas, capabilities, `create`): a literal import, which `tsc` rewrites for dist/. */
  load(): Promise<TargetDefinition<any>>;
}

/**
 * The registry: one entry per folder of src/targets/ (a test checks they match), keyed by the id.
 * Each folder's index.ts takes these facts from here (`defineTarget(TARGET_TYPES.x, ...)`).
 * Adding a target = a folder, its id in TARGET_IDS, one entry here.
 */
export const TARGET_TYPES = {
  dotenv: {
    localFile: (c: { path: string }) => c.path,
    load: async () => (await import('./dotenv/index.ts')).dotenv,
  },
  file: {
    localFile: (c: { path: string }) => c.path,
    load: async () => (await import('./file/index.ts')).file,
  },
  'docker-secret': {
    discover: async (ctx) => (await import('./docker-secret/discover.ts')).discoverDockerSecrets(ctx),
    load: async () => (await import('./docker-secret/index.ts')).dockerSecret,
  },
  'aws-secrets-manager': {
    discover: async (ctx) => (await import('./aws-secrets-manager/discover.ts')).discoverSecretsManager(ctx),
    load: async () => (await import('./aws-secrets-manager/index.ts')).awsSecretsManager,
  },
  'gcp-secret-manager': {
    discover: async (ctx) => (await import('./gcp-secret-manager/discover.ts')).discoverGcpSecrets(ctx),
    load: async () => (await import('./gcp-secret-manager/index.ts')).gcpSecretManager,
  },
  'azure-key-vault': {
    /** A bearer token for the vault, used instead of Entra ID when set (emulators, tokens minted elsewhere). */
    credentialEnv: ['KEYROT_AZURE_KEYVAULT_STATIC_TOKEN'],
    discover: async (ctx) => (await import('./azure-key-vault/discover.ts')).discoverKeyVaults(ctx),
    load: async () => (await import('./azure-key-vault/index.ts')).azureKeyVault,
  },
  kubernetes: {
    discover: async (ctx) => (await import('./kubernetes/discover.ts')).discoverKubernetes(ctx),
    load: async () => (await import('./kubernetes/index.ts')).kubernetes,
  },
  heroku: {
    /** The provider CLI's own variable. */
    credentialEnv: ['HEROKU_API_KEY'],
    discover: async (ctx) => (await import('./heroku/discover.ts')).discoverHeroku(ctx),
    load: async () => (await import('./heroku/index.ts')).heroku,
  },
  netlify: {
    /** The provider CLI's own variable. */
    credentialEnv: ['NETLIFY_AUTH_TOKEN'],
    discover: async (ctx) => (await import('./netlify/discover.ts')).discoverNetlify(ctx),
    load: async () => (await import('./netlify/index.ts')).netlify,
  },
  vercel: {
    /** The provider CLI's own variable. */
    credentialEnv: ['VERCEL_TOKEN'],
    discover: async (ctx) => (await import('./vercel/discover.ts')).discoverVercel(ctx),
    load: async () => (await import('./vercel/index.ts')).vercel,
  },
  railway: {
    /** An account/workspace token, or a project token (see the railway definition's tokenType). */
    credentialEnv: ['RAILWAY_API_TOKEN', 'RAILWAY_TOKEN'],
    discover: async (ctx) => (await import('./railway/discover.ts')).discoverRailway(ctx),
    load: async () => (await import('./railway/index.ts')).railway,
  },
  'aws-ssm-parameter': {
    discover: async (ctx) => (await import('./aws-ssm-parameter/discover.ts')).discoverSsmParameters(ctx),
    load: async () => (await import('./aws-ssm-parameter/index.ts')).awsSsmParameter,
  },
  vault: {
    /** The vault CLI's own variable. */
    credentialEnv: ['VAULT_TOKEN'],
    discover: async (ctx) => (await import('./vault/discover.ts')).discoverVault(ctx),
    load: async () => (await import('./vault/index.ts')).vault,
  },
  'docker-compose': {
    localFile: (c: { file?: string; env_file?: string }) => c.file ?? c.env_file,
    discover: async (ctx) => (await import('./docker-compose/discover.ts')).discoverCompose(ctx),
    load: async () => (await import('./docker-compose/index.ts')).dockerCompose,
  },
  supabase: {
    discover: async (ctx) => (await import('./supabase/discover.ts')).discoverSupabase(ctx),
    load: async () => (await import('./supabase/index.ts')).supabase,
  },
  render: {
    discover: async (ctx) => (await import('./render/discover.ts')).discoverRender(ctx),
    load: async () => (await import('./render/index.ts')).render,
  },
  fly: {
    discover: async (ctx) => (await import('./fly/discover.ts')).discoverFly(ctx),
    load: async () => (await import('./fly/index.ts')).fly,
  },
  'github-actions': {
    /** GH_TOKEN, then GITHUB_TOKEN (the GitHub CLI's order). */
    credentialEnv: ['GH_TOKEN', 'GITHUB_TOKEN'],
    discover: async (ctx) => (await import('./github-actions/discover.ts')).discoverGitHubActions(ctx),
    load: async () => (await import('./github-actions/index.ts')).githubActions,
  },
  'cloudflare-workers': {
    /** wrangler's variable. */
    credentialEnv: ['CLOUDFLARE_API_TOKEN'],
    discover: async (ctx) => (await import('./cloudflare-workers/discover.ts')).discoverCloudflareWorkers(ctx),
    load: async () => (await import('./cloudflare-workers/index.ts')).cloudflareWorkers,
  },
} as const satisfies Partial<Record<TargetId, TargetType>>;

export type RegisteredTargetId = keyof typeof TARGET_TYPES;

export const REGISTERED_IDS = Object.keys(TARGET_TYPES) as RegisteredTargetId[];

/** The light facts of a registered type; undefined for any other string (`__proto__` included). */
export function targetType(id: string): TargetType | undefined {
  return Object.hasOwn(TARGET_TYPES, id) ? (TARGET_TYPES as Record<string, TargetType>)[id] : undefined;
}

/** A registered type's definition, loaded on first use; undefined for an unknown type. */
export async function loadTargetDefinition(id: string): Promise<TargetDefinition<any> | undefined> {
  return targetType(id)?.load();
}

/** The definitions of the registered types among `ids` (unknown ones are left out), loaded at once. */
export async function loadTargetDefinitions(ids: Iterable<string>): Promise<Map<string, TargetDefinition<any>>> {
  const known = [...new Set(ids)].filter((id) => targetType(id));
  const defs = await Promise.all(known.map((id) => targetType(id)!.load()));
  return new Map(known.map((id, i) => [id, defs[i]!]));
}
