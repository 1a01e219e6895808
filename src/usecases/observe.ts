import type { Secret } from '../core/secret.ts';
import type { Run } from '../machine/run.ts';

export interface ObservedKeys {
  /** Every value read, one per readable target that holds one. */
  values: Secret[];
  /** The environment's old key: the value most readable targets hold (ties: the first). */
  old: Secret | null;
  /** Each distinct key and the first target seen holding it (more than one = drift). */
  distinct: Array<{ key: Secret; heldBy: string }>;
}

/** What the targets held at preflight, by key (a Run, or `plan`/`discover`'s own preflight). */
export function observedKeys(run: Pick<Run, 'live' | 'preflight'>): ObservedKeys {
  const values: Secret[] = [];
  const distinct = new Map<string, { key: Secret; heldBy: string; n: number }>();
  // In inventory order, so that a tie between keys goes to the first target listed.
  for (const lt of run.live) {
    const name = lt.spec.name;
    const p = run.preflight.get(name);
    if (p?.current?.kind !== 'value') continue;
    const v = p.current.value;
    values.push(v);
    const d = distinct.get(v.fingerprint);
    if (d) d.n++;
    else distinct.set(v.fingerprint, { key: v, heldBy: name, n: 1 });
  }
  let best: { key: Secret; n: number } | undefined;
  for (const d of distinct.values()) if (!best || d.n > best.n) best = d;
  return { values, old: best?.key ?? null, distinct: [...distinct.values()].map(({ key, heldBy }) => ({ key, heldBy })) };
}
