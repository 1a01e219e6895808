import type { NetlifyReceipt } from './index.ts';

/**
 * Netlify deploy contexts as keyrot names them (`production`, `branch:staging`) and as the API
 * does (`context: branch`, `context_parameter: staging`), and what a variable holds per context.
 */

export interface EnvValue {
  id?: string;
  value?: string;
  context?: string;
  context_parameter?: string;
}

/** A site-level environment variable (swagger `definitions.envVar`). */
export interface EnvVar {
  key: string;
  scopes?: string[];
  values?: EnvValue[];
  is_secret?: boolean;
  updated_at?: string;
}

/** One deploy context as configured (`production`, `branch:staging`) and as the API names it. */
export interface Ctx {
  /** The config / receipt name: `production`, `branch:staging`. */
  name: string;
  /** The API's `context`: `production`, `branch`. */
  context: string;
  /** The API's `context_parameter` for `branch`. */
  branch?: string;
  /** For messages: `production`, `branch staging`. */
  label: string;
}

export function parseCtx(name: string): Ctx {
  if (name.startsWith('branch:')) {
    const branch = name.slice('branch:'.length);
    return { name, context: 'branch', branch, label: `branch ${branch}` };
  }
  return { name, context: name, label: name };
}

export const ALL = parseCtx('all');
export const PRODUCTION = parseCtx('production');

/** `production`, `production and deploy-preview`, `production, deploy-preview and branch staging`. */
export function listLabel(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}
export const labels = (ctxs: Ctx[]) => listLabel(ctxs.map((c) => c.label));
export const plural = (ctxs: Ctx[], one: string, many: string) => (ctxs.length === 1 ? one : many);

/** The variable's own value for this context (not the `all` value it may fall back to). */
export function entryFor(v: EnvVar | undefined, c: Ctx): EnvValue | undefined {
  return v?.values?.find((x) => x.context === c.context && (c.context !== 'branch' || x.context_parameter === c.branch));
}

/** The contexts the variable has values for, as config names (`branch:NAME`). */
export function contextsOf(v: EnvVar | undefined): string[] {
  const names = (v?.values ?? []).map((x) => (x.context === 'branch' ? `branch:${x.context_parameter}` : String(x.context)));
  return [...new Set(names)];
}

/** The one build keyrot can start for these contexts: production for production/all, else a single branch:NAME's deploy. */
export function buildFor(ctxs: Ctx[]): { branch?: string } | undefined {
  if (ctxs.some((c) => c.context === 'production' || c.context === 'all')) return {};
  const branches = ctxs.filter((c) => c.context === 'branch');
  return branches.length === 1 ? { branch: branches[0]!.branch } : undefined;
}

/** The setEnvVarValue body for one context. */
export function valueBody(c: Ctx, value: string): Record<string, string> {
  return c.branch !== undefined ? { context: c.context, context_parameter: c.branch, value } : { context: c.context, value };
}

/** The contexts a receipt says were written (older receipts name one `context`). */
export function receiptContexts(receipt: NetlifyReceipt | undefined): Ctx[] | undefined {
  if (receipt?.contexts?.length) return receipt.contexts.map(parseCtx);
  return receipt?.context ? [parseCtx(receipt.context)] : undefined;
}

/** The value ids a receipt recorded, one per context (older receipts hold the first one only). */
export function receiptIds(receipt: NetlifyReceipt, ctxs: Ctx[]): Array<string | null> {
  if (receipt.valueIds) return ctxs.map((_, i) => receipt.valueIds![i] || null);
  return ctxs.map((_, i) => (i === 0 ? (receipt.valueId ?? null) : null));
}

/** Whether keyrot's write added this context's value (so a restore removes it). */
export function receiptAdded(receipt: NetlifyReceipt | undefined, c: Ctx): boolean {
  if (receipt?.added) return receipt.added.includes(c.name);
  return receipt?.addedValue === true;
}
