import { z } from 'zod';
import { defineTarget, WaitTimeout } from '../types.ts';
import { TARGET_TYPES } from '../index.ts';

/** GitHub's repository name shape: `OWNER/NAME`. */
const RepoName = z.string().regex(/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/, 'OWNER/NAME, such as acme/api');

/**
 * A workflow to run after the write (`redeploy`): it proves CI works with the secret it holds.
 * `workflow` is the file name under .github/workflows (or the workflow id); it needs an
 * `on: workflow_dispatch` trigger.
 */
export const DispatchConfig = z
  .object({
    workflow: z.string().min(1, 'a workflow file name such as smoke.yml'),
    ref: z.string().min(1, 'a branch or tag, such as main'),
    /** The repository whose workflow runs (default: the target's `repo`; required for organisation secrets). */
    repo: RepoName.optional(),
    /** The workflow's `workflow_dispatch` inputs (plain values, never a key). */
    inputs: z.record(z.string(), z.string()).optional(),
  })
  .strict();

/** One GitHub Actions (or Dependabot) secret: of a repository, one of its environments, or an organisation. */
export const GitHubActionsConfig = z
  .object({
    repo: RepoName.optional(),
    /** An environment of `repo`: the secret is an environment secret. */
    environment: z.string().min(1).optional(),
    org: z.string().regex(/^[A-Za-z0-9-]+$/, 'an organisation login, such as acme').optional(),
    /** Organisation secrets: which repositories may use it (kept as it is when omitted; required to create one). */
    visibility: z.enum(['all', 'private', 'selected']).optional(),
    /** With `visibility: selected`: the organisation's repositories (names) that may use it. */
    repositories: z.array(z.string().regex(/^[A-Za-z0-9._-]+$/, 'a repository name of the organisation')).optional(),
    /** A Dependabot secret instead of an Actions secret. */
    dependabot: z.boolean().optional(),
    dispatch: DispatchConfig.optional(),
    /** How long to wait for the dispatched workflow run (default 30m). */
    timeout: WaitTimeout.optional(),
  })
  .superRefine((c, ctx) => {
    const problem = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (!c.repo === !c.org) problem(c.org ? 'org' : 'repo', 'give exactly one of `repo: OWNER/NAME` or `org: ORG`');
    if (c.environment && !c.repo) problem('environment', '`environment:` is an environment of a repository: give `repo:` too');
    if (c.environment && c.dependabot) problem('dependabot', 'Dependabot secrets have no environments: remove `environment:` or `dependabot:`');
    if ((c.visibility || c.repositories) && !c.org) problem(c.visibility ? 'visibility' : 'repositories', 'only organisation secrets (`org:`) have a visibility');
    if (c.repositories && c.visibility !== 'selected') problem('repositories', '`repositories:` goes with `visibility: selected`');
    if (c.dispatch && !c.dispatch.repo && !c.repo) problem('dispatch', 'say which repository runs the workflow: `dispatch: { repo: OWNER/NAME, ... }`');
    if (c.dispatch && c.dependabot) problem('dispatch', 'Dependabot secrets are not given to dispatched workflow runs: remove `dispatch:`');
  });
export type GitHubActionsConfig = z.infer<typeof GitHubActionsConfig>;

/**
 * What a write leaves for verify and restore: the public key the value was sealed with, GitHub's
 * clock just before the write and the secret's `updated_at` after it (the proof of a write-only
 * value), whether keyrot created the secret, and an organisation secret's visibility before the
 * write (restored with the old value). Never a value.
 */
export const GitHubActionsReceipt = z.object({
  fingerprint: z.string(),
  keyId: z.string(),
  created: z.boolean(),
  writtenAfter: z.string(),
  updatedAt: z.string(),
  previousVisibility: z.enum(['all', 'private', 'selected']).nullable(),
  previousRepositoryIds: z.array(z.number()).nullable(),
});
export type GitHubActionsReceipt = z.infer<typeof GitHubActionsReceipt>;

/** The human location: `acme/api`, `acme/api env production`, `org acme`, with `(dependabot)`. */
export function describeGitHub(c: Pick<GitHubActionsConfig, 'repo' | 'org' | 'environment' | 'dependabot'>): string {
  const where = c.org ? `org ${c.org}` : `${c.repo}${c.environment ? ` env ${c.environment}` : ''}`;
  return c.dependabot ? `${where} (dependabot)` : where;
}

/** GitHub.com's REST API root; GitHub Enterprise Server serves it at https://HOST/api/v3. */
export const GITHUB_API = 'https://api.github.com';

/** Where the token is read from without `token:`: GH_TOKEN, then GITHUB_TOKEN (the GitHub CLI's order). */
export const GITHUB_TOKEN_ENV = TARGET_TYPES['github-actions'].credentialEnv;

export const githubActions = defineTarget('github-actions', {
  endpoint: { default: GITHUB_API },
  schema: GitHubActionsConfig,
  // Secrets are sealed with the store's public key and can never be read back: verified by the
  // secret's updated_at moving past the write and the key id used; restored by writing the old
  // key again (or deleting a secret keyrot created).
  capabilities: { readBack: 'never', versioned: false },
  receipt: { version: 1, schema: GitHubActionsReceipt },
  // GitHub asks integrations to make requests serially and keeps a secondary limit on
  // concurrent and content-creating requests (REST rate limits, "Best practices"): two at a time.
  concurrency: 2,
  describe: describeGitHub,
  create: async (config, ctx) => (await import('./adapter.ts')).createGitHubActionsTarget(config, ctx),
});
