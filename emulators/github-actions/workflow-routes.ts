import type { EmuRequest, EmuResponse } from '../server.ts';
import { isResponse, type EmuApi } from './api.ts';
import { ghError, iso, paginate, type Repo, type TokenInfo, type Workflow, type WorkflowRun } from './state.ts';

/**
 * Workflows and their runs (docs.github.com/rest/actions/workflows, /rest/actions/workflow-runs):
 * get a workflow by id or file name; dispatch it (204, or 200 with the run's id when the body asks
 * `return_run_details`, GitHub changelog 2026-02-19; a server without it, GHES 3.20 and older,
 * refuses the unknown field: benc-uk/workflow-dispatch#86, cli/cli#12672); list a workflow's runs; get a run. A run is
 * `queued`, then `in_progress`, then `completed` with a conclusion, over `runs.durationMs`; it sees
 * the repository's (and its organisation's) Actions secrets as they were when it was dispatched.
 */

const DISPATCH_DOC = 'https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event';

export function registerWorkflowRoutes(api: EmuApi): void {
  const base = '/repos/:owner/:repo/actions';
  api.on('GET', `${base}/workflows/:workflow`, (req, tok) => withWorkflow(api, req, tok, 'read', (repo, wf) => ({ status: 200, body: workflowView(api, repo, wf) })));
  api.on('POST', `${base}/workflows/:workflow/dispatches`, (req, tok) => withWorkflow(api, req, tok, 'write', (repo, wf) => dispatch(api, req, repo, wf)));
  api.on('GET', `${base}/workflows/:workflow/runs`, (req, tok) => withWorkflow(api, req, tok, 'read', (repo, wf) => listRuns(api, req, repo, wf)));
  api.on('GET', `${base}/runs/:run`, (req, tok) => {
    const repo = api.repo(req, tok);
    if (isResponse(repo)) return repo;
    const denied = api.need(tok, 'actions', 'read', DISPATCH_DOC);
    if (denied) return denied;
    const run = repo.runs.find((r) => r.id === Number(req.params.run));
    return run ? { status: 200, body: runView(api, repo, run) } : ghError(404, 'Not Found');
  });
}

/** The repository (404), the Actions permission (403), then the workflow by id or file name (404). */
function withWorkflow(api: EmuApi, req: EmuRequest, tok: TokenInfo, access: 'read' | 'write', fn: (repo: Repo, wf: Workflow) => EmuResponse): EmuResponse {
  const repo = api.repo(req, tok);
  if (isResponse(repo)) return repo;
  const denied = api.need(tok, 'actions', access, DISPATCH_DOC);
  if (denied) return denied;
  const key = req.params.workflow!;
  const wf = repo.workflows.find((w) => String(w.id) === key || w.path.split('/').pop() === key);
  return wf ? fn(repo, wf) : ghError(404, 'Not Found', { docs: DISPATCH_DOC });
}

function workflowView(api: EmuApi, repo: Repo, wf: Workflow): Record<string, unknown> {
  return { id: wf.id, name: wf.name, path: wf.path, state: 'active', url: `${api.baseUrl()}/repos/${repo.owner}/${repo.name}/actions/workflows/${wf.id}` };
}

/** Status of a run now: queued until it starts, in progress until it ends, then completed. */
function statusOf(api: EmuApi, run: WorkflowRun): { status: string; conclusion: string | null } {
  const now = api.now();
  if (now < run.startsAt) return { status: 'queued', conclusion: null };
  if (now < run.endsAt) return { status: 'in_progress', conclusion: null };
  return { status: 'completed', conclusion: run.conclusion };
}

export function runView(api: EmuApi, repo: Repo, run: WorkflowRun): Record<string, unknown> {
  const s = statusOf(api, run);
  return {
    id: run.id,
    name: run.workflow.name,
    run_number: run.runNumber,
    event: run.event,
    status: s.status,
    conclusion: s.conclusion,
    head_branch: run.headBranch,
    workflow_id: run.workflow.id,
    path: run.workflow.path,
    created_at: iso(run.createdAt),
    updated_at: iso(Math.min(api.now(), run.endsAt)),
    run_started_at: iso(run.startsAt),
    url: `${api.baseUrl()}/repos/${repo.owner}/${repo.name}/actions/runs/${run.id}`,
    html_url: `https://github.com/${repo.owner}/${repo.name}/actions/runs/${run.id}`,
  };
}

function dispatch(api: EmuApi, req: EmuRequest, repo: Repo, wf: Workflow): EmuResponse {
  const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
  if ('return_run_details' in body && !api.runs.details) return ghError(422, 'Invalid request.\n\n"return_run_details" is not a permitted key.', { docs: DISPATCH_DOC });
  if (typeof body.ref !== 'string') return ghError(422, `Invalid request.\n\n"ref" wasn't supplied.`, { docs: DISPATCH_DOC });
  const branch = body.ref.replace(/^refs\/heads\//, '');
  if (!repo.branches.has(branch)) return ghError(422, `No ref found for: ${body.ref}`, { docs: DISPATCH_DOC });
  if (!wf.dispatchable) return ghError(422, "Workflow does not have 'workflow_dispatch' trigger", { docs: DISPATCH_DOC });
  const now = api.now();
  const run: WorkflowRun = {
    id: api.nextId(),
    runNumber: repo.runs.filter((r) => r.workflow === wf).length + 1,
    workflow: wf,
    event: 'workflow_dispatch',
    headBranch: branch,
    createdAt: now,
    startsAt: now + Math.round(api.runs.durationMs / 3),
    endsAt: now + api.runs.durationMs,
    conclusion: api.runs.takeFailure() ? 'failure' : 'success',
    secretsSeen: secretsFor(api, repo, wf),
  };
  repo.runs.push(run);
  if (body.return_run_details === true && api.runs.details) {
    const view = runView(api, repo, run);
    return { status: 200, body: { workflow_run_id: run.id, run_url: view.url, html_url: view.html_url } };
  }
  return { status: 204 };
}

/**
 * What a run of `repo` sees: its organisation's secrets that reach it, overridden by the
 * repository's, overridden by its job's environment's (docs: "Using secrets in GitHub Actions").
 */
function secretsFor(api: EmuApi, repo: Repo, wf: Workflow): Record<string, string> {
  const out: Record<string, string> = {};
  const org = api.orgNamed(repo.owner);
  for (const s of org?.actions.secrets.values() ?? []) {
    const reaches = s.visibility === 'all' || (s.visibility === 'private' && repo.private) || (s.visibility === 'selected' && (s.selectedRepositoryIds ?? []).includes(repo.id));
    if (reaches) out[s.name] = s.value;
  }
  for (const s of repo.actions.secrets.values()) out[s.name] = s.value;
  for (const s of (wf.environment ? repo.environments.get(wf.environment)?.store.secrets.values() : undefined) ?? []) out[s.name] = s.value;
  return out;
}

function listRuns(api: EmuApi, req: EmuRequest, repo: Repo, wf: Workflow): EmuResponse {
  const event = req.query.get('event');
  const branch = req.query.get('branch');
  const created = req.query.get('created');
  const since = created?.startsWith('>=') ? Date.parse(created.slice(2)) : undefined;
  const runs = repo.runs
    .filter((r) => r.workflow === wf && (!event || r.event === event) && (!branch || r.headBranch === branch) && (since === undefined || r.createdAt >= since))
    .sort((a, b) => b.createdAt - a.createdAt || b.id - a.id);
  const page = paginate(req, runs);
  return { status: 200, headers: page.headers, body: { total_count: runs.length, workflow_runs: page.items.map((r) => runView(api, repo, r)) } };
}
