import type { Fault } from '../../emulators/server.ts';

/**
 * The fault matrix's `403` column: each provider's own "your credentials are valid but may not do
 * this" answer (status, headers, body as the provider sends it), beside the `401` column's bad
 * credentials. In every phase the invariants must hold as for any other failure, and a denial must
 * never be read as "the value is absent".
 */
const forever = 10_000;
const json = (status: number, body: unknown, headers: Record<string, string> = {}): Fault => ({ status, body, headers, times: forever });

const awsDenied = (action: string): Fault =>
  // AWS JSON protocol: AccessDeniedException is an HTTP 400 (AWS Secrets Manager API reference, Common Errors).
  json(400, { __type: 'AccessDeniedException', Message: `User: arn:aws:iam::000000000000:user/keyrot is not authorized to perform: ${action} because no identity-based policy allows the ${action} action` }, { 'x-amzn-errortype': 'AccessDeniedException' });

export const PERMISSION_DENIED: Record<string, Fault> = {
  'aws-secrets-manager': awsDenied('secretsmanager:PutSecretValue'),
  'aws-ssm-parameter': awsDenied('ssm:PutParameter'),
  // Key Vault: RBAC denial names the data action (learn.microsoft.com, Key Vault RBAC guide: "Forbidden" / ForbiddenByRbac).
  'azure-key-vault': json(403, { error: { code: 'Forbidden', message: 'Caller is not authorized to perform action on resource. Action: \'Microsoft.KeyVault/vaults/secrets/setSecret/action\'', innererror: { code: 'ForbiddenByRbac' } } }),
  // Cloudflare v4 envelope: a token without the Workers Scripts Edit permission.
  'cloudflare-workers': json(403, { success: false, errors: [{ code: 10000, message: 'Authentication error' }], messages: [], result: null }),
  fly: json(403, { error: 'unauthorized' }),
  // google.rpc.Status: PERMISSION_DENIED names the missing permission.
  'gcp-secret-manager': json(403, { error: { code: 403, message: "Permission 'secretmanager.versions.add' denied for resource 'projects/p/secrets/s' (or it may not exist).", status: 'PERMISSION_DENIED' } }),
  // A fine-grained token without the Secrets permission (docs.github.com, REST API: permissions for fine-grained tokens).
  'github-actions': json(403, { message: 'Resource not accessible by personal access token', documentation_url: 'https://docs.github.com/rest/actions/secrets', status: '403' }),
  heroku: json(403, { id: 'forbidden', message: 'You do not have access to the app keyrot-app.' }),
  kubernetes: json(403, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'secrets "openai" is forbidden: User "keyrot" cannot update resource "secrets" in API group "" in the namespace "default"', reason: 'Forbidden', details: { name: 'openai', kind: 'secrets' }, code: 403 }),
  netlify: json(403, { code: 403, message: 'You don\'t have permission to access this resource' }),
  // Railway's GraphQL answers 200 with an errors array for a token without access to the project.
  railway: json(200, { data: null, errors: [{ message: 'Not Authorized', extensions: { code: 'FORBIDDEN' } }] }),
  render: json(403, { message: 'forbidden' }),
  supabase: json(403, { message: 'Your account does not have the necessary privileges to access this endpoint.' }),
  vault: json(403, { errors: ['1 error occurred:\n\t* permission denied\n\n'] }),
  // Vercel answers 403 `forbidden` for a token scoped to another team.
  vercel: json(403, { error: { code: 'forbidden', message: 'Not authorized', invalidToken: false } }),
  // An Engine behind an authorization plugin (or a docker-socket-proxy): "authorization denied by plugin" is a 403 (moby pkg/authorization).
  'docker-secret': json(403, { message: 'authorization denied by plugin keyrot-authz: request rejected by administrative policy' }),
};
