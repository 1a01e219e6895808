import { z } from 'zod';

/**
 * The part of GitHub Actions' workflow syntax the keyrot template uses, strict: a misspelt key
 * (`runs_on`, `cancel-in-progres`) fails instead of being ignored by GitHub at run time.
 * Written from "Workflow syntax for GitHub Actions"
 * (https://docs.github.com/en/actions/writing-workflows/workflow-syntax-for-github-actions) and
 * "Events that trigger workflows" (https://docs.github.com/en/actions/writing-workflows/choosing-when-your-workflow-runs/events-that-trigger-workflows#schedule).
 */
const expression = z.string().regex(/^\$\{\{ [^}]+ \}\}$/);
const envMap = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.union([z.string(), expression]));

const step = z
  .object({
    name: z.string().optional(),
    uses: z.string().regex(/^[\w.-]+\/[\w.-]+(\/[\w./-]+)?@[\w.-]+$/).optional(),
    run: z.string().optional(),
    with: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
    env: envMap.optional(),
    shell: z.string().optional(),
    'working-directory': z.string().optional(),
  })
  .strict()
  .refine((s) => (s.uses === undefined) !== (s.run === undefined), 'a step has exactly one of uses: and run:');

const job = z
  .object({
    'runs-on': z.string(),
    'timeout-minutes': z.number().int().positive().optional(),
    environment: z.string().optional(),
    permissions: z.record(z.string(), z.enum(['read', 'write', 'none'])).optional(),
    env: envMap.optional(),
    steps: z.array(step).min(1),
  })
  .strict();

const permissionScopes = z.enum([
  'actions', 'attestations', 'checks', 'contents', 'deployments', 'discussions', 'id-token', 'issues',
  'models', 'packages', 'pages', 'pull-requests', 'repository-projects', 'security-events', 'statuses',
]);

export const workflowSchema = z
  .object({
    name: z.string(),
    on: z
      .object({
        // Five POSIX cron fields, in UTC; the shortest interval GitHub runs is every 5 minutes.
        schedule: z.array(z.object({ cron: z.string() }).strict()).min(1).optional(),
        workflow_dispatch: z.object({}).strict().nullable().optional(),
      })
      .strict(),
    concurrency: z.object({ group: z.string(), 'cancel-in-progress': z.boolean() }).strict().optional(),
    permissions: z.partialRecord(permissionScopes, z.enum(['read', 'write', 'none'])).optional(),
    env: envMap.optional(),
    jobs: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/), job),
  })
  .strict();
