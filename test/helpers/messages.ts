import type { RotationReport } from '../../src/machine/outcome.ts';
import { renderNotices } from '../../src/render/notices.ts';

/** What the CLI prints under a report: its notices in words. */
export function messagesOf(rep: RotationReport): string[] {
  return renderNotices(rep.notices);
}
