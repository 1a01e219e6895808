import { TargetError } from '../../core/errors.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../../runtime/deadline.ts';
import { credentialOrDefault } from '../../inventory/credentials.ts';
import { laneOf, lazyCredential, preflightFailed } from '../common.ts';
import { waitTimeoutMs } from '../types.ts';
import { tokenRateLimitKey } from '../token-client.ts';
import type { CommonTargetConfig, PreflightResult, ReadResult, Target, TargetContext } from '../types.ts';
import { supabase, type SupabaseConfig, type SupabaseReceipt } from './index.ts';
import { TOKEN_HELP, holdsValue, supabaseClient, type SupabaseSecret } from './client.ts';

/**
 * An Edge Function secret of one Supabase project. Write-only: the Management API lists each
 * secret's SHA-256 digest, never its value, so verification compares that digest with the new
 * key's (in memory), and the value held before the rotation is "unreadable" (the engine restores
 * the environment's old key). Edge Functions read secrets at run time: nothing to redeploy.
 */

const credentialName = (ref: { kind: string; name?: string; raw: string }) => (ref.kind === 'env' ? ref.name! : ref.raw);

export function unreadable(name: string, ref: string): ReadResult {
  return { kind: 'unreadable', reason: `Supabase lists only a SHA-256 digest of ${name} on project ${ref}, never its value` };
}

export function createSupabaseTarget(config: SupabaseConfig & CommonTargetConfig, ctx: TargetContext & { name: string }): Target<SupabaseReceipt> {
  const ref = config.project;
  const varName = ctx.varName;
  const cred = credentialOrDefault(config.token, ['SUPABASE_ACCESS_TOKEN'], ctx.env);
  const credential = lazyCredential(ctx, cred, (m) => `Supabase access token: ${m} (${TOKEN_HELP})`);
  const rateLimitKey = tokenRateLimitKey('supabase', config.endpoint, credentialName(cred));
  const api = supabaseClient({
    endpoint: config.endpoint,
    lane: laneOf(ctx, rateLimitKey, supabase),
    credential,
    credName: credentialName(cred),
    clock: ctx.clock,
    target: ctx.name,
    timeoutMs: waitTimeoutMs(config.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS),
  });
  const where = `Supabase project ${ref} secret ${varName}`;

  const fail = (message: string, op: string, kind: TargetError['kind'], retryable = false) => new TargetError(message, { target: ctx.name, op, kind, retryable });
  const entryOf = async (op: string, signal?: AbortSignal): Promise<SupabaseSecret | undefined> => (await api.secrets(ref, op, signal)).find((s) => s.name === varName);

  async function read(signal?: AbortSignal): Promise<ReadResult> {
    return (await entryOf('read', signal)) ? unreadable(varName, ref) : { kind: 'absent' };
  }

  async function preflight(signal?: AbortSignal): Promise<PreflightResult> {
    // The API refuses names with this prefix: they are Supabase's own (CreateSecretBody pattern).
    if (varName.toUpperCase().startsWith('SUPABASE_')) {
      const reason = `Supabase reserves secret names starting with SUPABASE_, so ${varName} cannot be set: change \`var:\` (or key.name)`;
      return { status: 'blocked', reason, current: { kind: 'unreadable', reason } };
    }
    try {
      const project = await api.project(ref, 'preflight', signal);
      const current = await read(signal);
      if (project.status && !project.status.startsWith('ACTIVE')) {
        const reason = `Supabase project ${ref} is ${project.status}, so its Edge Functions are not running: restore the project in the Supabase dashboard, or remove this target`;
        return { status: 'blocked', reason, current };
      }
      const notes = [
        `sets the Edge Function secret ${varName} of Supabase project ${ref}${project.name ? ` (${project.name})` : ''}; functions read it on their next invocation, no redeploy needed`,
        `verified by the SHA-256 digest Supabase lists for it, compared with the new key's in memory (the value itself is write-only)`,
      ];
      if (current.kind === 'absent') notes.push(`${varName} is not set on project ${ref}: keyrot will create it (and delete it again on rollback)`);
      return { status: 'ready', current, willCreate: current.kind === 'absent', notes };
    } catch (err) {
      return preflightFailed(err, ctx.name);
    }
  }

  return {
    id: 'supabase',
    name: ctx.name,
    location: `supabase project ${ref}`,
    // One project's secrets: two targets on one project take turns.
    rateLimitKey,
    lockKey: `supabase:${config.endpoint ?? ''}:${ref}`,
    preflight,
    read,

    async write(value, op) {
      const before = await entryOf('write', op.signal);
      // Idempotent: the digest already is the new key's, so nothing is sent.
      if (holdsValue(before, value)) return { project: ref, changed: false, created: false };
      await api.set(ref, varName, value, 'write', op.signal);
      return { project: ref, changed: true, created: !before };
    },

    async verify(value, op) {
      const now = await entryOf('verify', op.signal);
      if (holdsValue(now, value)) return { method: 'metadata', detail: `the SHA-256 digest Supabase lists for ${varName} on project ${ref} is the new key's` };
      // Never the digest itself: it is a hash of a key.
      const found = now ? 'a different value (its digest is not the new key’s)' : 'nothing';
      throw fail(`verify mismatch: ${where} holds ${found}, not the new key (${value.fingerprint})`, 'verify', 'mismatch');
    },

    async restore(previous, op) {
      const now = await entryOf('restore', op.signal);
      if (previous === null) {
        // The secret did not exist before this rotation: remove the one keyrot created.
        if (now) await api.remove(ref, varName, 'restore', op.signal);
        return;
      }
      if (!holdsValue(now, previous)) await api.set(ref, varName, previous, 'restore', op.signal);
    },
  };
}
