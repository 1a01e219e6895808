import { TargetError } from '../../core/errors.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { poll } from '../../runtime/poll.ts';
import type { OpContext, RedeployPurpose, TargetContext, VerifyResult } from '../types.ts';
import type { CallAbout, GitHubClient } from './client.ts';
import type { GitHubActionsConfig } from './index.ts';

/**
 * The target's `redeploy`: run a workflow and wait for its conclusion, a real proof that CI works
 * with the secret as it is now (the new key after a write, the old one after a restore). Facts:
 * - `POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches` with `{ref, inputs}`;
 *   the workflow needs an `on: workflow_dispatch` trigger (docs.github.com/rest/actions/workflows).
 *   With `return_run_details: true` GitHub answers 200 with `workflow_run_id` (github.blog/changelog/
 *   2026-02-19-workflow-dispatch-api-now-returns-run-ids; shapes in cli/cli#12672). GitHub
 *   Enterprise Server 3.20 and older refuse that field ("is not a permitted key", 400/422:
 *   cli/cli#12672, benc-uk/workflow-dispatch#86): keyrot dispatches again without it, gets a 204,
 *   and finds the run among the workflow's `workflow_dispatch` runs on that ref created since
 *   the dispatch (`created=>=…`).
 * - A run is `queued` / `in_progress` / … until `status: completed`, then `conclusion` says how it
 *   ended (`success`, `failure`, `cancelled`, …) (docs.github.com/rest/actions/workflow-runs).
 * - A job reads secrets when it starts: a run dispatched after the write sees the new value.
 */

interface Run {
  id: number;
  run_number?: number;
  status: string;
  conclusion: string | null;
  html_url?: string;
  created_at?: string;
}

/** How long to look for the run of a dispatch that returned no id (GitHub creates it within seconds). */
const FIND_RUN_MS = 120_000;

export function workflowDispatcher(client: GitHubClient, config: GitHubActionsConfig, ctx: TargetContext & { name: string }, timeoutMs: number) {
  const d = config.dispatch!;
  const [owner, repo] = (d.repo ?? config.repo!).split('/') as [string, string];
  const wf = { owner, repo, workflow_id: d.workflow };
  const label = `workflow ${d.workflow} of ${owner}/${repo} on ${d.ref}`;
  const about: CallAbout = {
    subject: label,
    notFound: `check \`dispatch.workflow\` (the file name under .github/workflows) and \`dispatch.repo\`, and that the token can see the repository`,
    permission: 'the repository permission "Actions: read and write"',
  };
  /** Per purpose and rotation: the run keyrot started (a retried wait does not dispatch again). */
  const started = new Map<string, number>();

  async function check(signal?: AbortSignal): Promise<void> {
    await client.call(`preflight`, 'GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}', wf, about, signal);
  }

  async function dispatch(signal?: AbortSignal): Promise<number> {
    const since = client.serverNow() ?? ctx.clock.now();
    const post = (extra: object) =>
      client.call<{ workflow_run_id?: number } | undefined>('redeploy', 'POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...wf, ref: d.ref, inputs: d.inputs ?? {}, ...extra }, about, signal);
    const res = await post({ return_run_details: true }).catch((err: unknown) => {
      // GHES 3.20 and older refuse the unknown field (400/422) and start no run: dispatch as they
      // know it. Another refusal (a wrong ref, inputs) is refused again, and that error is thrown.
      if (err instanceof TargetError && (err.status === 400 || err.status === 422)) return post({});
      throw err;
    });
    const id = res.status === 200 ? Number(res.data?.workflow_run_id) : NaN;
    return Number.isFinite(id) && id > 0 ? id : findRun(since, signal);
  }

  /** The newest workflow_dispatch run on the ref created since `since` (GitHub's clock, to the second). */
  async function findRun(since: number, signal?: AbortSignal): Promise<number> {
    const created = `>=${new Date(since - 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')}`;
    const query = { ...wf, event: 'workflow_dispatch', branch: d.ref.replace(/^refs\/(heads|tags)\//, ''), created, per_page: 10 };
    const runs = await poll({
      check: async () => (await client.call<{ workflow_runs: Run[] }>('redeploy', 'GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', query, about, signal)).data.workflow_runs,
      until: (list) => list.length > 0,
      deadlineMs: FIND_RUN_MS,
      clock: ctx.clock,
      signal,
      target: ctx.name,
      op: 'redeploy',
      describe: () => `GitHub accepted the dispatch of ${label} but shows no run of it after ${formatDuration(FIND_RUN_MS)}: check the workflow's Actions tab`,
    });
    return runs[0]!.id;
  }

  function watch(id: number, signal?: AbortSignal): Promise<Run> {
    return poll({
      check: async () => (await client.call<Run>('redeploy', 'GET /repos/{owner}/{repo}/actions/runs/{run_id}', { owner, repo, run_id: id }, about, signal)).data,
      until: (r) => r.status === 'completed',
      deadlineMs: timeoutMs,
      clock: ctx.clock,
      signal,
      target: ctx.name,
      op: 'redeploy',
      describe: (r) => `${label}: run ${r?.run_number ? `#${r.run_number}` : id} is still ${r?.status ?? 'not visible'} after ${formatDuration(timeoutMs)}${r?.html_url ? ` (${r.html_url})` : ''}: raise \`timeout:\` if the workflow is slow`,
    });
  }

  async function run(op: OpContext, purpose: RedeployPurpose): Promise<VerifyResult> {
    const key = `${purpose}:${op.rotationId}`;
    let id = started.get(key);
    if (id === undefined) {
      id = await dispatch(op.signal);
      started.set(key, id);
    }
    const done = await watch(id, op.signal);
    const which = `run ${done.run_number ? `#${done.run_number}` : done.id}${done.html_url ? ` (${done.html_url})` : ''}`;
    if (done.conclusion !== 'success') {
      const now = purpose === 'write' ? 'the new key' : 'the restored key';
      throw new TargetError(`${label}: ${which} concluded ${done.conclusion ?? 'without a conclusion'}, so CI did not prove it works with ${now}: see the run's log`, {
        target: ctx.name,
        op: 'redeploy',
        kind: 'unavailable',
        retryable: false,
      });
    }
    return { method: 'redeploy', detail: `${label}: ${which} succeeded with ${purpose === 'write' ? 'the new key' : 'the old key again'}` };
  }

  return { check, run, label, timeoutMs };
}
