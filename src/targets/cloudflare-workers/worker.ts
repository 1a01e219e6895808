import type { Secret } from '../../core/secret.ts';
import { absentOn404 } from '../../runtime/provider-http.ts';
import { bindingsOf, type CallAbout, type Deployment, type WorkersClient, type WorkerVersion } from './client.ts';

/**
 * One Worker's secrets, versions and deployments (developers.cloudflare.com/api/resources/workers/
 * subresources/scripts/…): `PUT …/secrets` `{name, text, type: "secret_text"}` adds the secret to
 * a new version of the Worker and deploys it; `DELETE …/secrets/{name}` does the same without it;
 * `GET …/secrets` lists names and types only; versions are listed newest first; a version's `resources.bindings` name its secrets (values
 * omitted); deployments are listed newest first (`result.deployments`: the client's typed list
 * reads `result.items`, so keyrot reads them with the client's `get`, as wrangler does).
 */
export function workerApi(client: WorkersClient, account: string, script: string, varName: string) {
  const base = `/accounts/${encodeURIComponent(account)}/workers/scripts/${encodeURIComponent(script)}`;
  const about: CallAbout = {
    subject: `Worker ${script} of account ${account}`,
    notFound: `check \`script:\` (the Worker's name) and \`account:\` (the account id, in the dashboard's Workers & Pages overview), and that the token is for that account`,
  };
  const secretAbout: CallAbout = { ...about, subject: `secret ${varName} of Worker ${script} (account ${account})` };

  const secrets = (op: string, signal?: AbortSignal) =>
    client.call(op, about, async (cf, s) => {
      const out: Array<{ name: string; type: string }> = [];
      for await (const x of cf.workers.scripts.secrets.list(script, { account_id: account }, { signal: s })) out.push({ name: x.name, type: x.type });
      return out;
    }, signal);

  const hasSecret = async (op: string, signal?: AbortSignal) => (await secrets(op, signal)).some((x) => x.name === varName && x.type === 'secret_text');

  const putSecret = (value: Secret, op: string, signal?: AbortSignal) =>
    client.call(op, secretAbout, (cf, s) => cf.workers.scripts.secrets.update(script, { account_id: account, name: varName, text: value.reveal(), type: 'secret_text' }, { signal: s }), signal);

  /** Deletes the secret (a new version without it); false when it was already gone. */
  const deleteSecret = async (op: string, signal?: AbortSignal): Promise<boolean> => {
    const done = await client
      .call(op, secretAbout, (cf, s) => cf.workers.scripts.secrets.delete(varName, { account_id: account, script_name: script }, { signal: s }), signal)
      .then(() => true, absentOn404);
    return done === true;
  };

  const latestDeployment = (op: string, signal?: AbortSignal) =>
    client.call(op, about, async (cf, s) => (await cf.get<{ result?: { deployments?: Deployment[] } }>(`${base}/deployments`, { signal: s })).result?.deployments?.[0], signal);

  const latestVersionId = (op: string, signal?: AbortSignal) =>
    client.call(op, about, async (cf, s) => (await cf.workers.scripts.versions.list(script, { account_id: account, per_page: 1 }, { signal: s })).getPaginatedItems()[0]?.id, signal);

  const version = (id: string, op: string, signal?: AbortSignal): Promise<WorkerVersion> =>
    client.call(op, about, async (cf, s) => {
      const v = await cf.workers.scripts.versions.get(id, { account_id: account, script_name: script }, { signal: s });
      const annotations = (v as { annotations?: Record<string, string | undefined> }).annotations;
      return { id: v.id ?? id, number: v.number ?? 0, bindings: bindingsOf(v), triggeredBy: annotations?.['workers/triggered_by'] ?? null };
    }, signal);

  return { about, secretAbout, secrets, hasSecret, putSecret, deleteSecret, latestDeployment, latestVersionId, version };
}

export type WorkerApi = ReturnType<typeof workerApi>;

/** The one version a deployment serves to all traffic, or undefined for a split (gradual) deployment. */
export function soleVersion(d: Deployment | undefined): string | undefined {
  const v = d?.versions ?? [];
  return v.length === 1 && v[0]!.percentage === 100 ? v[0]!.version_id : undefined;
}
