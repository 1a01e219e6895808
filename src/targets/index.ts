import type { TargetDefinition, TargetId } from './types.ts';
import { dotenv } from './dotenv/index.ts';
import { file } from './file/index.ts';
import { dockerSecret } from './docker-secret/index.ts';
import { awsSecretsManager } from './aws-secrets-manager/index.ts';
import { gcpSecretManager } from './gcp-secret-manager/index.ts';
import { azureKeyVault } from './azure-key-vault/index.ts';
import { kubernetes } from './kubernetes/index.ts';
import { heroku } from './heroku/index.ts';
import { netlify } from './netlify/index.ts';
import { vercel } from './vercel/index.ts';
import { railway } from './railway/index.ts';
import { awsSsmParameter } from './aws-ssm-parameter/index.ts';
import { vault } from './vault/index.ts';
import { dockerCompose } from './docker-compose/index.ts';
import { supabase } from './supabase/index.ts';
import { render } from './render/index.ts';
import { fly } from './fly/index.ts';
import { githubActions } from './github-actions/index.ts';
import { cloudflareWorkers } from './cloudflare-workers/index.ts';

/**
 * The registry: one entry per folder of src/targets/ (a test checks they match). Importing this
 * loads only schemas; each definition's `create` loads the implementation and its SDK lazily.
 * Adding a target = a folder, its id in TARGET_IDS, one line here.
 */
export const TARGETS = {
  dotenv,
  file,
  'docker-secret': dockerSecret,
  'aws-secrets-manager': awsSecretsManager,
  'gcp-secret-manager': gcpSecretManager,
  'azure-key-vault': azureKeyVault,
  kubernetes,
  heroku,
  netlify,
  vercel,
  railway,
  'aws-ssm-parameter': awsSsmParameter,
  vault,
  'docker-compose': dockerCompose,
  supabase,
  render,
  fly,
  'github-actions': githubActions,
  'cloudflare-workers': cloudflareWorkers,
} satisfies Partial<Record<TargetId, TargetDefinition<any>>>;

export type RegisteredTargetId = keyof typeof TARGETS;

export function targetDefinition(id: string): TargetDefinition<any> | undefined {
  return Object.hasOwn(TARGETS, id) ? (TARGETS as Record<string, TargetDefinition<any>>)[id] : undefined;
}

export const REGISTERED_IDS = Object.keys(TARGETS) as RegisteredTargetId[];
