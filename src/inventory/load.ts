import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, isMap, isPair, isScalar, isSeq, visit, type Document, type Node } from 'yaml';
import { z } from 'zod';
import { ConfigError, ConfigErrors, type SourcePosition } from '../core/errors.ts';
import { REGISTERED_IDS, targetDefinition } from '../targets/index.ts';
import { TARGET_IDS, type CommonTargetConfig, type TargetDefinition } from '../targets/types.ts';
import { CommonTargetFields, InventoryConfig, type KeyConfig } from './schema.ts';

export interface TargetSpec {
  type: string;
  name: string;
  definition: TargetDefinition<any>;
  /** Validated config: the type's own fields plus the common ones. */
  config: Record<string, unknown> & CommonTargetConfig;
  position: SourcePosition;
}

export interface Environment {
  name: string;
  targets: TargetSpec[];
  /** `key:` with this environment's overrides applied. */
  key: KeyConfig;
  keySource: string;
  schedule: InventoryConfig['schedule'];
}

export interface Inventory {
  path: string;
  baseDir: string;
  config: InventoryConfig;
  environments: Map<string, Environment>;
}

type Path = ReadonlyArray<string | number | symbol | PropertyKey>;

/** Values that look like live credentials: refused anywhere in targets.yaml. */
const KEY_LIKE: Array<[RegExp, string]> = [
  [/sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}/, 'an OpenAI API key'],
  [/\bHRKU-[A-Za-z0-9_-]{8,}/, 'a Heroku API token'],
  [/\bgh[pousr]_[A-Za-z0-9]{20,}/, 'a GitHub token'],
  [/\bAKIA[0-9A-Z]{16}\b/, 'an AWS access key id'],
  [/\bxox[abpr]-[A-Za-z0-9-]{10,}/, 'a Slack token'],
  [/https:\/\/hooks\.slack\.com\/services\/\S+/, 'a Slack webhook URL'],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a private key'],
];

/**
 * Reads and validates targets.yaml. Every mistake is reported at once, each with
 * file:line:column and the field, and the whole load fails with exit 2 (ConfigErrors).
 */
export async function loadInventory(path: string): Promise<Inventory> {
  const abs = resolve(path);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigErrors([
      new ConfigError(
        code === 'ENOENT'
          ? `no inventory at ${abs}: create a targets.yaml (see README "targets.yaml reference") or pass -c PATH`
          : `cannot read the inventory ${abs} (${code})`,
      ),
    ]);
  }
  return parseInventory(text, abs);
}

export function parseInventory(text: string, file: string): Inventory {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const pos = (offset: number | undefined): SourcePosition => {
    const p = lc.linePos(offset ?? 0);
    return { file, line: p.line, column: p.col };
  };
  const errors: ConfigError[] = [];

  for (const e of doc.errors) {
    errors.push(new ConfigError(`YAML syntax: ${e.message.split('\n')[0]}`, pos(e.pos[0])));
  }
  if (errors.length) throw new ConfigErrors(errors);

  // Secrets have no place in the inventory, whatever the field.
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string') return;
      for (const [re, what] of KEY_LIKE) {
        if (re.test(node.value)) {
          errors.push(
            new ConfigError(
              `this value looks like ${what}: keep secrets out of targets.yaml and reference them with env:VAR or file:PATH (then revoke that credential: it may be in git history)`,
              pos(node.range?.[0]),
            ),
          );
          break;
        }
      }
    },
  });

  const data = doc.toJS() as unknown;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    errors.push(new ConfigError('expected a mapping with version, key and environments', pos(0)));
    throw new ConfigErrors(errors);
  }

  /** Validates one environment's targets against their type's schema; errors go to `errors`. */
  const checkTargets = (envName: string, targets: readonly unknown[]): TargetSpec[] => {
    const specs: TargetSpec[] = [];
    const seen = new Map<string, SourcePosition>();
    targets.forEach((raw, i) => {
      if (!raw || typeof raw !== 'object' || typeof (raw as { type?: unknown }).type !== 'string') return; // reported by the top-level schema
      const type = (raw as { type: string }).type;
      const base: Path = ['environments', envName, 'targets', i];
      const def = targetDefinition(type);
      if (!def) {
        const known = (TARGET_IDS as readonly string[]).includes(type);
        errors.push(
          new ConfigError(
            known
              ? `target type "${type}" is not available in this version of keyrot; available: ${REGISTERED_IDS.join(', ')}`
              : `unknown target type "${type}"; valid types: ${REGISTERED_IDS.join(', ')}`,
            nodePos(doc, pos, [...base, 'type']),
            fieldName([...base, 'type']),
          ),
        );
        return;
      }
      const schema = (def.schema as z.ZodObject).extend(CommonTargetFields).strict();
      const parsed = schema.safeParse(raw);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) errors.push(issueToError(doc, pos, issue, base, def.id));
        return;
      }
      const cfg = parsed.data as Record<string, unknown> & CommonTargetConfig;
      const name = cfg.name ?? `${def.id}:${def.describe(cfg)}`;
      const position = nodePos(doc, pos, base);
      const prev = seen.get(name);
      if (prev) {
        errors.push(
          new ConfigError(
            `duplicate target name "${name}" (first at line ${prev.line}): give one of them a distinct name`,
            nodePos(doc, pos, cfg.name ? [...base, 'name'] : base),
            fieldName(cfg.name ? [...base, 'name'] : base),
          ),
        );
        return;
      }
      seen.set(name, position);
      specs.push({ type: def.id, name, definition: def, config: cfg, position });
    });
    return specs;
  };

  const top = InventoryConfig.safeParse(data);
  if (!top.success) {
    for (const issue of top.error.issues) errors.push(issueToError(doc, pos, issue, []));
    // Check the targets too, so every mistake is reported in one pass.
    const rawEnvs = (data as { environments?: unknown }).environments;
    if (rawEnvs && typeof rawEnvs === 'object' && !Array.isArray(rawEnvs)) {
      for (const [envName, env] of Object.entries(rawEnvs)) {
        const targets = (env as { targets?: unknown } | null)?.targets;
        if (Array.isArray(targets)) checkTargets(envName, targets);
      }
    }
    throw new ConfigErrors(errors);
  }
  const config = top.data;
  const environments = new Map<string, Environment>();

  for (const [envName, env] of Object.entries(config.environments)) {
    const specs = checkTargets(envName, env.targets);
    environments.set(envName, {
      name: envName,
      targets: specs,
      key: { ...config.key, ...stripUndefined(env.key ?? {}) },
      keySource: env.key?.source ?? config.key.source,
      schedule: env.schedule ?? config.schedule,
    });
  }
  if (errors.length) throw new ConfigErrors(errors);
  return { path: file, baseDir: dirname(file), config, environments };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function fieldName(path: Path): string {
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), '');
}

/** The position of the node at `path`, or of its closest existing ancestor. */
function nodePos(doc: Document, pos: (o: number | undefined) => SourcePosition, path: Path): SourcePosition {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true) as Node | undefined;
    if (node && (node as Node).range) return pos((node as Node).range![0]);
  }
  return pos(0);
}

/** The position of a mapping's key (for unrecognized fields). */
function keyPos(doc: Document, pos: (o: number | undefined) => SourcePosition, path: Path, key: string): SourcePosition {
  const parent = path.length ? doc.getIn(path as unknown[], true) : doc.contents;
  if (isMap(parent)) {
    const pair = parent.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === key);
    if (pair && isScalar(pair.key) && pair.key.range) return pos(pair.key.range[0]);
  }
  return nodePos(doc, pos, path);
}

function describeExpected(issue: z.core.$ZodIssue, path: Path, doc: Document): string {
  if (issue.code === 'invalid_type') {
    const expected = issue.expected === 'array' ? 'a list' : issue.expected === 'object' || issue.expected === 'record' ? 'a mapping' : issue.expected;
    const node = doc.getIn(path as unknown[], true);
    if (node === undefined) return `required field missing: expected ${expected}`;
    const got = isSeq(node) ? 'a list' : isMap(node) ? 'a mapping' : isScalar(node) ? JSON.stringify(node.value) : 'something else';
    return `expected ${expected}, got ${got}`;
  }
  if (issue.code === 'invalid_value') {
    if (issue.values.length === 1) return `expected ${JSON.stringify(issue.values[0])}`;
    return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return issue.message;
}

function issueToError(
  doc: Document,
  pos: (o: number | undefined) => SourcePosition,
  issue: z.core.$ZodIssue,
  base: Path,
  type?: string,
): ConfigError {
  const path: Path = [...base, ...issue.path];
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const where = type ? `a ${type} target` : fieldName(path) || 'the top level';
    return new ConfigError(
      `unknown field "${issue.keys.join('", "')}" in ${where}${type ? ` (see src/targets/${type}/README.md)` : ''}`,
      keyPos(doc, pos, path, key),
      fieldName([...path, key]),
    );
  }
  return new ConfigError(describeExpected(issue, path, doc), nodePos(doc, pos, path), fieldName(path));
}

/** Picks the environment: `-e NAME`, or the only one. */
export function selectEnvironment(inv: Inventory, name: string | undefined): Environment {
  const names = [...inv.environments.keys()];
  if (name) {
    const env = inv.environments.get(name);
    if (!env) throw new ConfigError(`no environment "${name}" in ${inv.path}; environments: ${names.join(', ')}`);
    return env;
  }
  if (names.length === 1) return inv.environments.get(names[0]!)!;
  throw new ConfigError(`${inv.path} has ${names.length} environments (${names.join(', ')}): choose one with -e NAME`);
}
