/**
 * What `keyrot init` writes: the inventory's head, and one commented example entry per target
 * type. Every value is a placeholder the schema accepts, so the file loads as written and
 * `keyrot plan` says, per target, what is still to be filled in.
 */

export const HEADER = `# keyrot inventory: every place the key lives. Written by \`keyrot init\`.
# Every field is described in keyrot's README.md, section "targets.yaml reference", which links
# each target type's own README (credentials, least permissions, how it is verified).
version: 1
key:
  name: OPENAI_API_KEY        # the variable written to every target (a target's var: overrides it)
  kind: openai                # openai | generic (another issuer's key: no format or live check)
  source: prompt              # the new key: prompt | stdin | env:VAR | file:PATH | openai-admin
  verify: true                # live check of the new key (GET /v1/models) before anything is written
# schedule: { cron: "0 9 1 * *", timezone: UTC }   # monthly rotations with \`keyrot schedule\`
revoke:
  mode: prompt                # you revoke the old key in the dashboard; \`keyrot revoke\` records it
environments:
`;

/** One entry per type: lines under `targets:` (indented by the caller). */
export const TEMPLATES: Record<string, string> = {
  dotenv: `# A .env file: only the key's line changes (comments, order, quoting kept). Relative to this file.
- type: dotenv
  path: .env`,
  file: `# A file holding only the key (OPENAI_API_KEY_FILE style), created 0600.
- type: file
  path: secrets/openai_api_key`,
  'docker-secret': `# A Docker Swarm secret (DOCKER_HOST: a swarm manager): a new secret <secret>_<n>, services swapped to it.
- type: docker-secret
  secret: openai_api_key
  services: [backend]`,
  kubernetes: `# One key of a Kubernetes Secret (kubeconfig or in-cluster); the workloads listed are restarted.
- type: kubernetes
  namespace: default
  secret: openai-api-key
  key: OPENAI_API_KEY
  restart: [deployment/api]`,
  'aws-secrets-manager': `# An AWS Secrets Manager secret (the AWS default credential chain).
- type: aws-secrets-manager
  secret: myapp/openai-api-key
  region: us-east-1
  # field: OPENAI_API_KEY     # when the SecretString is a JSON object`,
  'gcp-secret-manager': `# A Google Secret Manager secret: a new version (Application Default Credentials).
- type: gcp-secret-manager
  project: your-project-id
  secret: openai-api-key`,
  'azure-key-vault': `# An Azure Key Vault secret: a new version (DefaultAzureCredential).
- type: azure-key-vault
  vault: https://your-vault-name.vault.azure.net/
  secret: openai-api-key`,
  heroku: `# A Heroku config var (HEROKU_API_KEY); keyrot waits for the release it starts.
- type: heroku
  app: your-app-name`,
  railway: `# A Railway service variable (RAILWAY_API_TOKEN); one redeploy, watched. Ids from the project's settings.
- type: railway
  project: 00000000-0000-0000-0000-000000000000
  environment: 00000000-0000-0000-0000-000000000000
  service: 00000000-0000-0000-0000-000000000000`,
  vercel: `# A Vercel environment variable (VERCEL_TOKEN); redeploy: the latest production deployment.
- type: vercel
  project: your-project
  targets: [production]
  redeploy: true`,
  netlify: `# A Netlify environment variable (NETLIFY_AUTH_TOKEN); redeploy: a production build, watched.
- type: netlify
  site: your-site-id
  context: production
  redeploy: true`,
};

/** For a type without a written example (a newer one): its name and where it is described. */
export function fallbackTemplate(type: string, required: string[]): string {
  return [
    `# ${type}: fill in its fields (keyrot's README.md, section "targets.yaml reference").`,
    `- type: ${type}`,
    ...required.map((f) => `  ${f}: CHANGE-ME`),
  ].join('\n');
}

export function inventoryText(env: string, entries: string[]): string {
  const indent = (block: string) =>
    block
      .split('\n')
      .map((l) => `      ${l}`)
      .join('\n');
  return `${HEADER}  ${env}:\n    targets:\n${entries.map(indent).join('\n\n')}\n`;
}
