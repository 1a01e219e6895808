import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { EXIT, ExitError } from '../../core/errors.ts';
import { didYouMean } from '../../core/suggest.ts';
import { parseInventory } from '../../inventory/load.ts';
import { ENV_NAME_RE } from '../../inventory/schema.ts';
import { ensureStateDir } from '../../state/inventory-scope.ts';
import { REGISTERED_IDS, loadTargetDefinition, targetType } from '../../targets/index.ts';
import { keyrotCommand } from '../../render/command.ts';
import { createOutFor, startReadingCommand, usage, type CommonFlags } from '../context.ts';
import type { Out } from '../output.ts';
import { fallbackTemplate, inventoryText, TEMPLATES } from '../init/templates.ts';

export type InitFlags = CommonFlags & { type?: string; force?: boolean; discover?: boolean; key?: string; path?: string[] | string };

/**
 * `keyrot init`: a commented targets.yaml for the chosen target types, and `.keyrot/.gitignore`.
 * Never overwrites an inventory unless --force.
 */
export async function init(flags: InitFlags): Promise<number> {
  const out = createOutFor(flags);
  if (flags.discover && flags.type !== undefined) usage('--discover and --type: choose one (--discover lists the places found, --type writes examples)');
  const env = flags.env ?? 'production';
  if (!ENV_NAME_RE.test(env)) usage(`-e ${env}: environment names use letters, digits, ".", "_" and "-"`);
  const path = resolve(flags.config ?? 'targets.yaml');
  if (existsSync(path) && !flags.force) {
    throw new ExitError(EXIT.usage, `${path} already exists: keyrot init does not overwrite it (--force does)`);
  }
  if (flags.discover) return initDiscovered(flags, path, env, out);
  const types = flags.type !== undefined ? parseTypes(flags.type) : await chooseTypes(out.json);
  const text = inventoryText(env, await Promise.all(types.map(templateFor)));
  await parseInventory(text, path); // what init writes always loads: a template that does not is a bug
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text, { mode: 0o644 });
  const stateDir = join(dirname(path), '.keyrot');
  await ensureStateDir(stateDir);
  const shown = relative(process.cwd(), path) || path;
  if (out.json) out.result({ path, env, types, stateDir });
  out.human(
    `Wrote ${shown} (${types.join(', ')}) and ${relative(process.cwd(), join(stateDir, '.gitignore'))} (keyrot's state is never committed).\n` +
      `Fill in the placeholders, then check every target read-only: \`${keyrotCommand({ config: flags.config }, 'plan', '-e', env)}\``,
  );
  return EXIT.ok;
}

function parseTypes(list: string): string[] {
  const types = [...new Set(list.split(',').map((t) => t.trim()).filter(Boolean))];
  if (!types.length) usage('--type: name at least one target type, e.g. --type dotenv,heroku');
  for (const t of types) {
    if (!targetType(t)) usage(`--type: unknown target type "${t}"${didYouMean(t, REGISTERED_IDS)}; valid types: ${REGISTERED_IDS.join(', ')}`);
  }
  return types;
}

async function templateFor(type: string): Promise<string> {
  if (TEMPLATES[type]) return TEMPLATES[type];
  const shape = ((await loadTargetDefinition(type))!.schema as unknown as { shape?: Record<string, { safeParse(v: unknown): { success: boolean } }> }).shape ?? {};
  return fallbackTemplate(type, Object.keys(shape).filter((k) => !shape[k]!.safeParse(undefined).success));
}

/** On a terminal, a checklist of the target types; elsewhere --type is needed. */
async function chooseTypes(json: boolean): Promise<string[]> {
  if (json || !process.stdin.isTTY || !process.stderr.isTTY) {
    usage(`which target types? --type TYPE,... (e.g. --type dotenv,heroku); valid types: ${REGISTERED_IDS.join(', ')}`);
  }
  const { checklist } = await import('../init/checklist.ts');
  const picked = await checklist('Which places hold the key? (space: select, enter: done)', REGISTERED_IDS.map((id) => ({ value: id, label: id, hint: hintOf(id) })));
  if (!picked.length) usage('no target type chosen: nothing written');
  return picked;
}

/** The first words of a type's example comment, for the checklist. */
function hintOf(type: string): string {
  const first = (TEMPLATES[type]?.split('\n')[0] ?? '').replace(/^# /, '');
  return first.length > 60 ? `${first.slice(0, 59).replace(/[ ,:(]+\S*$/, '')}…` : first;
}

/** `init --discover`: the places the key was found, written as the inventory's targets. */
async function initDiscovered(flags: InitFlags, path: string, env: string, out: Out): Promise<number> {
  // The search only reads, and can take minutes: Ctrl-C during it ends init at once, nothing written.
  const stop = startReadingCommand('init --discover', flags);
  stop.whereThingsStand = async () => `nothing was written (the inventory is written once the search is done)`;
  const { discoveredInventory } = await import('../init/discover.ts');
  const given = flags.path === undefined ? [] : Array.isArray(flags.path) ? flags.path : [flags.path];
  const dirs = [...new Set([process.cwd(), ...given.map((p) => resolve(p))])];
  for (const d of dirs) if (!existsSync(d)) usage(`--path ${d}: no such file or directory`);
  const { text, report, keyFrom } = await discoveredInventory({ path, env, keySource: flags.key, dirs });
  // Never a targets.yaml cut in half: a Ctrl-C now waits for the write, then says it was written.
  await stop.uninterrupted(async () => {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text, { mode: 0o644 });
    await ensureStateDir(join(dirname(path), '.keyrot'));
  });
  stop.whereThingsStand = async () => `wrote ${path}`;
  const listed = report.found.filter((f) => f.target !== null).length;
  if (out.json) out.result({ path, env, ...report });
  out.human(
    `Looked for ${report.key.hint} (${report.key.fingerprint}): ${keyFrom}.\n` +
      `Wrote ${relative(process.cwd(), path) || path} with ${listed} target${listed === 1 ? '' : 's'} found by keyrot discover (each commented with where it was found).\n` +
      report.skipped.map((s) => `  skipped ${s.provider}: ${s.reason}\n`).join('') +
      `Review it (a place found is not always one to rotate), then check every target read-only: \`${keyrotCommand({ config: flags.config }, 'plan', '-e', env)}\``,
  );
  return EXIT.ok;
}
