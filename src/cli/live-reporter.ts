import { printable } from '../core/printable.ts';
import type { Reporter, TargetPhase } from '../machine/progress.ts';
import { bold, dim, green, red, table, yellow, type Out } from './output.ts';

const PHASE_LABEL: Record<TargetPhase, string> = {
  preflight: 'checking',
  ready: 'ready',
  writing: 'writing',
  written: 'written',
  verifying: 'verifying',
  redeploying: 'redeploying',
  verified: 'verified',
  restoring: 'restoring',
  restored: 'restored',
  failed: 'FAILED',
  finalized: 'finalized',
  searching: 'searching',
  searched: 'searched',
  skipped: 'skipped',
};

const BUSY = new Set<TargetPhase>(['preflight', 'writing', 'verifying', 'redeploying', 'restoring', 'searching']);
const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/** Up to this many targets, one row each; above, summaries (a row per target would scroll away). */
export const ROWS_UP_TO = 24;
const FAILURES_SHOWN = 8;
const BUSY_SHOWN = 5;

/**
 * Progress: on a terminal, a live display redrawn in place (log-update, stderr); otherwise one
 * plain line per event, so logs and CI output stay readable.
 */
export interface LiveReporter extends Reporter {
  /** Stop redrawing (before a prompt takes the terminal); `resume` redraws below it. */
  pause(): void;
  resume(): void;
  /** Final frame (`clear`: none, the display erased: a quit before the end); idempotent. */
  done(how?: 'keep' | 'clear'): void;
}

export interface TargetState {
  phase: TargetPhase;
  detail?: string;
  since: number;
  /** The target's type (the provider), for the summaries of a large fleet. */
  type?: string;
}

/** What one frame shows: the step, since when, every target's state. */
export interface Frame {
  step: string;
  stepSince: number;
  targets: Map<string, TargetState>;
  now: number;
  tick: number;
  color: boolean;
}

/** Runs `fn` (a prompt) with the live display paused, so the two do not draw over each other. */
export async function paused<T>(r: LiveReporter, fn: () => Promise<T>): Promise<T> {
  r.pause();
  try {
    return await fn();
  } finally {
    r.resume();
  }
}

/** A small fleet: one row per target. A large one: a progress bar with ETA, one line per provider, the failures, the slowest in flight. */
export function renderFrame(f: Frame): string {
  return printable(`${bold(f.step, f.color)}\n${f.targets.size > ROWS_UP_TO ? summaryOf(f) : rowsOf(f)}`);
}

function rowsOf(f: Frame): string {
  const rows = [...f.targets].map(([name, s]) => {
    const busy = BUSY.has(s.phase);
    const mark = busy ? FRAMES[f.tick % FRAMES.length]! : s.phase === 'failed' ? red('✗', f.color) : s.phase === 'skipped' ? yellow('–', f.color) : green('✓', f.color);
    const secs = busy ? dim(` ${Math.round((f.now - s.since) / 1000)}s`, f.color) : '';
    return [mark, name, PHASE_LABEL[s.phase] + secs, s.detail ? dim(s.detail.slice(0, 100), f.color) : ''];
  });
  return table(rows);
}

function summaryOf(f: Frame): string {
  const all = [...f.targets];
  // Done in this step: an event since the step began that left the target idle (or failed).
  const settled = (s: TargetState) => !BUSY.has(s.phase) && s.since >= f.stepSince;
  const done = all.filter(([, s]) => settled(s)).length;
  const failed = all.filter(([, s]) => s.phase === 'failed');
  const lines = [`  ${bar(done, all.length)} ${done}/${all.length}${eta(done, all.length, f.now - f.stepSince)}`];
  const byType = new Map<string, TargetState[]>();
  for (const [, s] of all) byType.set(s.type ?? 'targets', [...(byType.get(s.type ?? 'targets') ?? []), s]);
  const rows = [...byType].map(([type, ss]) => {
    const n = (p: (s: TargetState) => boolean) => ss.filter(p).length;
    const bad = n((s) => s.phase === 'failed');
    return [type, `${n(settled)}/${ss.length} done`, `${n((s) => BUSY.has(s.phase))} in flight`, bad ? red(`${bad} failed`, f.color) : ''];
  });
  lines.push(table(rows));
  if (failed.length) {
    lines.push(red(`  failed (${failed.length}):`, f.color));
    for (const [name, s] of failed.slice(0, FAILURES_SHOWN)) lines.push(`    ${name}${s.detail ? dim(`: ${s.detail.slice(0, 100)}`, f.color) : ''}`);
    if (failed.length > FAILURES_SHOWN) lines.push(dim(`    and ${failed.length - FAILURES_SHOWN} more (all in the table at the end)`, f.color));
  }
  const slowest = all.filter(([, s]) => BUSY.has(s.phase)).sort((a, b) => a[1].since - b[1].since).slice(0, BUSY_SHOWN);
  for (const [name, s] of slowest) lines.push(dim(`  ${FRAMES[f.tick % FRAMES.length]} ${name}: ${PHASE_LABEL[s.phase]} ${Math.round((f.now - s.since) / 1000)}s`, f.color));
  return lines.join('\n');
}

function bar(done: number, total: number, width = 30): string {
  const full = total ? Math.round((done / total) * width) : 0;
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

/** Time left at the pace so far (the step's average per target); nothing until one target is done. */
function eta(done: number, total: number, elapsedMs: number): string {
  if (!done || done >= total) return '';
  const left = Math.ceil(((elapsedMs / done) * (total - done)) / 1000);
  return `, about ${left >= 120 ? `${Math.round(left / 60)} min` : `${left} s`} left`;
}

/** The reporter of a command: live on a terminal, plain lines otherwise. `types`: each target's type, by name. */
export async function createReporter(out: Out, types: Map<string, string> = new Map(), now: () => number = Date.now): Promise<LiveReporter> {
  if (!out.tty) {
    return {
      step: (name, detail) => out.err(`[${name}]${detail ? ' ' + detail : ''}`),
      target: (name, phase, detail) => out.err(`  ${name}: ${PHASE_LABEL[phase]}${detail ? ` (${detail})` : ''}`),
      info: (m) => out.err(m),
      warn: (m) => out.err(`warning: ${m}`),
      pause() {},
      resume() {},
      done() {},
    };
  }
  const { createLogUpdate } = await import('log-update');
  return liveReporter(out, createLogUpdate(process.stderr), types, now);
}

type LogUpdate = ((text: string) => void) & { clear(): void; done(): void };

function liveReporter(out: Out, update: LogUpdate, types: Map<string, string>, now: () => number): LiveReporter {
  const f: Frame = { step: '', stepSince: now(), targets: new Map(), now: now(), tick: 0, color: out.color };
  const render = () => update(renderFrame({ ...f, now: now() }));
  let live = true;
  let finished = false;
  // Something changed since the last frame left on screen (a pause leaves one).
  let dirty = false;
  const draw = () => {
    dirty = true;
    // A large fleet redraws on the timer only: a thousand events would be a thousand frames.
    if (live && !finished && f.targets.size <= ROWS_UP_TO) render();
  };
  const timer = setInterval(() => {
    f.tick++;
    if (live && !finished) render();
  }, 120);
  timer.unref();
  const say = (line: string) => {
    if (live) update.clear();
    out.err(line);
    draw();
  };
  return {
    step(name, detail) {
      f.step = `${name}${detail ? ` — ${detail}` : ''}`;
      f.stepSince = now();
      draw();
    },
    target(name, phase, detail) {
      f.targets.set(name, { phase, detail, since: now(), type: types.get(name) });
      draw();
    },
    info: (m) => say(m),
    warn: (m) => say(yellow(`warning: ${m}`, out.color)),
    pause() {
      if (!live || finished) return;
      render();
      update.done(); // keep the current frame on screen; the prompt goes below it
      live = false;
      dirty = false;
    },
    resume() {
      live = true;
    },
    done(how = 'keep') {
      if (finished) return;
      clearInterval(timer);
      if (how === 'clear') {
        update.clear();
        update.done();
      } else if (live && dirty) {
        render();
        update.done();
      }
      finished = true;
    },
  };
}
