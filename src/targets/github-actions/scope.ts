import type { GitHubActionsConfig } from './index.ts';

/**
 * Which secret store a target addresses, as GitHub's REST routes and in words. Routes are Octokit
 * route templates: Octokit fills `{owner}`, `{repo}`, `{environment_name}`, `{org}` and
 * `{secret_name}` from the parameters, URL-encoding each (an environment name with a slash too).
 * Routes: docs.github.com/rest/actions/secrets and /rest/dependabot/secrets.
 */
export interface SecretScope {
  kind: 'repo' | 'environment' | 'org';
  app: 'actions' | 'dependabot';
  /** The store's route, e.g. `/repos/{owner}/{repo}/actions/secrets`. */
  route: string;
  params: Record<string, string>;
  /** "repository acme/api", "environment production of acme/api", "organisation acme". */
  where: string;
  /** "Actions secret" or "Dependabot secret". */
  what: string;
  /** The fine-grained token permissions this store needs, for messages and the README. */
  permissions: string;
}

export function scopeOf(c: Pick<GitHubActionsConfig, 'repo' | 'org' | 'environment' | 'dependabot'>): SecretScope {
  const app = c.dependabot ? 'dependabot' : 'actions';
  const what = c.dependabot ? 'Dependabot secret' : 'Actions secret';
  if (c.org) {
    return {
      kind: 'org',
      app,
      route: `/orgs/{org}/${app}/secrets`,
      params: { org: c.org },
      where: `organisation ${c.org}`,
      what,
      permissions: c.dependabot ? 'the organisation permission "Dependabot secrets: read and write"' : 'the organisation permission "Secrets: read and write"',
    };
  }
  const [owner, repo] = c.repo!.split('/') as [string, string];
  if (c.environment) {
    return {
      kind: 'environment',
      app,
      route: '/repos/{owner}/{repo}/environments/{environment_name}/secrets',
      params: { owner, repo, environment_name: c.environment },
      where: `environment ${c.environment} of ${c.repo}`,
      what: 'environment secret',
      permissions: 'the repository permissions "Secrets: read and write" and "Environments: read and write"',
    };
  }
  return {
    kind: 'repo',
    app,
    route: `/repos/{owner}/{repo}/${app}/secrets`,
    params: { owner, repo },
    where: `repository ${c.repo}`,
    what,
    permissions: c.dependabot ? 'the repository permission "Dependabot secrets: read and write"' : 'the repository permission "Secrets: read and write"',
  };
}

/**
 * GitHub's secret-name rules (docs: "Using secrets in GitHub Actions" → naming your secrets):
 * letters, digits and underscores, not starting with a digit or `GITHUB_`; case-insensitive.
 */
export function secretNameProblem(name: string): string | undefined {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return `GitHub secret names may contain only letters, digits and underscores and may not start with a digit, not ${JSON.stringify(name)}`;
  if (/^GITHUB_/i.test(name)) return `GitHub reserves secret names starting with GITHUB_, so ${name} cannot be one`;
  return undefined;
}
