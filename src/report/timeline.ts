import type { EnvironmentReport, RotationRow } from './data.ts';
import { esc } from './escape.ts';

const WIDTH = 1000;
const HEIGHT = 70;
const PAD = 30;
const DAY = 86_400_000;

export const OUTCOME_COLOUR: Record<string, string> = {
  completed: '#2da44e',
  'awaiting-revocation': '#bf8700',
  failed: '#cf222e',
  'rolled-back': '#cf222e',
  interrupted: '#8250df',
};

/**
 * The environment's rotations on a time axis, as inline SVG: one mark per rotation at its start
 * (a circle; a triangle for an emergency), coloured by outcome, with a tick where the old key was
 * revoked. Each mark has a <title> (the browser's tooltip) and the class `mark rotation`.
 */
export function timelineSvg(e: EnvironmentReport): string {
  const times = e.rotations.flatMap((r) => [Date.parse(r.startedAt), ...(r.revokedAt ? [Date.parse(r.revokedAt)] : [])]);
  if (!times.length) return '';
  const end = Math.max(...times, Date.parse(e.rotations.at(-1)!.endedAt ?? e.rotations.at(-1)!.startedAt)) + DAY;
  const start = Math.min(...times, end - 30 * DAY);
  const x = (t: number) => PAD + ((t - start) / (end - start)) * (WIDTH - 2 * PAD);
  const marks = e.rotations.map((r) => rotationMark(r, x)).join('');
  const axis = `<line x1="${PAD}" y1="35" x2="${WIDTH - PAD}" y2="35" stroke="#d0d7de"/>` + ticks(start, end, x);
  return `<svg class="timeline" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="100%" role="img" aria-label="rotations of ${esc(e.env)} over time" xmlns="http://www.w3.org/2000/svg">${axis}${marks}</svg>`;
}

function rotationMark(r: RotationRow, x: (t: number) => number): string {
  const cx = x(Date.parse(r.startedAt)).toFixed(1);
  const colour = OUTCOME_COLOUR[r.outcome] ?? '#57606a';
  const title = `<title>${esc(`${r.id}: ${r.mode}, ${r.outcome}, started ${r.startedAt}${r.revokedAt ? `, old key revoked ${r.revokedAt}` : ''}`)}</title>`;
  const shape =
    r.mode === 'emergency'
      ? `<polygon points="${cx},25 ${Number(cx) - 7},41 ${Number(cx) + 7},41" fill="${colour}"/>`
      : `<circle cx="${cx}" cy="35" r="6" fill="${colour}"/>`;
  const revoked = r.revokedAt ? `<line class="revoked" x1="${x(Date.parse(r.revokedAt)).toFixed(1)}" y1="24" x2="${x(Date.parse(r.revokedAt)).toFixed(1)}" y2="46" stroke="${colour}" stroke-width="2"/>` : '';
  return `<g class="mark rotation outcome-${esc(r.outcome)}" data-rotation="${esc(r.id)}">${title}${shape}</g>${revoked}`;
}

/** A date label at the start and end of the axis, and at each month boundary between when it fits. */
function ticks(start: number, end: number, x: (t: number) => number): string {
  const labels = [start, end];
  const d = new Date(start);
  for (let m = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)).getTime(); m < end - 10 * DAY; ) {
    if (m > start + 10 * DAY) labels.push(m);
    const n = new Date(m);
    m = Date.UTC(n.getUTCFullYear(), n.getUTCMonth() + 1, 1);
  }
  const step = Math.max(1, Math.ceil(labels.length / 12));
  return labels
    .sort((a, b) => a - b)
    .filter((_, i, all) => i % step === 0 || i === all.length - 1)
    .map((t, i, all) => `<text x="${x(t).toFixed(1)}" y="62" text-anchor="${i === 0 ? 'start' : i === all.length - 1 ? 'end' : 'middle'}">${new Date(t).toISOString().slice(0, 10)}</text>`)
    .join('');
}
