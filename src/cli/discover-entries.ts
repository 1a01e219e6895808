import { stringify } from 'yaml';
import type { FoundPlace } from '../usecases/discover.ts';

/**
 * The targets.yaml lines of a found place, for the user to paste (or for `init --discover` to
 * write): a comment saying where keyrot found it, then the entry as a list item.
 */
export function entryBlock(place: FoundPlace & { target: Record<string, unknown> }): string {
  const body = stringify([place.target], { lineWidth: 0 }).trimEnd();
  return `# found by keyrot discover: ${oneLine(place.location)}\n${body}`;
}

/** The places not in the inventory that a target type can rotate. */
export function entriesToAdd(found: FoundPlace[]): Array<FoundPlace & { target: Record<string, unknown> }> {
  return found.filter((f): f is FoundPlace & { target: Record<string, unknown> } => !f.inInventory && f.target !== null);
}

const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ');
