import { dirname, resolve } from 'node:path';
import { isMap, isScalar, isSeq, visit } from 'yaml';
import { z } from 'zod';
import { ConfigError, ConfigErrorList, ConfigErrors, type SourcePosition } from '../core/errors.ts';
import { quoteInput } from '../core/printable.ts';
import { REGISTERED_IDS, loadTargetDefinitions } from '../targets/index.ts';
import { TARGET_IDS, type CommonTargetConfig, type TargetDefinition } from '../targets/types.ts';
import { CommonTargetFields, InventoryConfig, type KeyConfig, type WatchConfig } from './schema.ts';
import { endpointProblem } from './endpoints.ts';
import { MAX_INVENTORY_BYTES, readInventoryText } from './read.ts';
import { parseYaml, type Path, type YamlTree } from './yaml.ts';
import { didYouMean } from '../core/suggest.ts';
import { knownFields } from './known-fields.ts';

/**
 * Where the inventory's fields are documented: keyrot's README (it ships in the package), whose
 * "targets.yaml reference" section has every field and links each target type's own README.
 */
export const INVENTORY_DOCS = 'README.md#targetsyaml-reference';

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
  /** The usage watch of the daemon: the environment's own `watch:`, else the top-level one. */
  watch?: WatchConfig;
}

export interface Inventory {
  path: string;
  baseDir: string;
  config: InventoryConfig;
  environments: Map<string, Environment>;
}

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
 * Reads and validates targets.yaml. Every mistake is reported at once (the first 20, and a count),
 * each with file:line:column and the field, and the whole load fails with exit 2 (ConfigErrors).
 * Any input, however large, malformed or hostile, is answered in time linear in its size.
 */
export async function loadInventory(path: string): Promise<Inventory> {
  const abs = resolve(path);
  return parseInventory(await readInventoryText(abs), abs);
}

/** Validates an inventory's text; loads the definitions of the target types it names, and only those. */
export async function parseInventory(text: string, file: string): Promise<Inventory> {
  if (Buffer.byteLength(text, 'utf8') > MAX_INVENTORY_BYTES) {
    throw new ConfigErrors([new ConfigError('the inventory is larger than 1 MiB, which no targets.yaml is', { file, line: 1, column: 1 })]);
  }
  const tree = parseYaml(text, file);
  const { doc, pos } = tree;
  const errors = new ConfigErrorList();

  // Secrets have no place in the inventory, whatever the field.
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string') return;
      const found = KEY_LIKE.find(([re]) => re.test(node.value as string));
      if (found) {
        errors.add(
          () =>
            new ConfigError(
              `this value looks like ${found[1]}: keep secrets out of targets.yaml and reference them with env:VAR or file:PATH (then revoke that credential: it may be in git history)`,
              pos(node.range?.[0]),
            ),
        );
      }
    },
  });

  const data = tree.data;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    errors.add(() => new ConfigError('expected a mapping with version, key and environments', pos(0)));
    throw errors.toError();
  }
  const named = rawTargetLists(data).flatMap(([, targets]) => targets.map((t) => (t as { type?: unknown } | null)?.type));
  const definitions = await loadTargetDefinitions(named.filter((t): t is string => typeof t === 'string'));

  /** Validates one environment's targets against their type's schema; errors go to `errors`. */
  const checkTargets = (envName: string, targets: readonly unknown[]): TargetSpec[] => {
    const specs: TargetSpec[] = [];
    const seen = new Map<string, SourcePosition>();
    targets.forEach((raw, i) => {
      if (!raw || typeof raw !== 'object' || typeof (raw as { type?: unknown }).type !== 'string') return; // reported by the top-level schema
      const type = (raw as { type: string }).type;
      const base: Path = ['environments', envName, 'targets', i];
      const def = definitions.get(type);
      if (!def) {
        const known = (TARGET_IDS as readonly string[]).includes(type);
        errors.add(
          () =>
            new ConfigError(
              known
                ? `target type ${quoteInput(type)} is not available in this version of keyrot; available: ${REGISTERED_IDS.join(', ')}`
                : `unknown target type ${quoteInput(type)}${didYouMean(type, REGISTERED_IDS)}; valid types: ${REGISTERED_IDS.join(', ')}`,
              nodePos(tree, [...base, 'type']),
              fieldName([...base, 'type']),
            ),
        );
        return;
      }
      const parsed = targetSchema(def).safeParse(raw);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) errors.add(() => issueToError(tree, issue, base, { id: def.id, schema: targetSchema(def) }));
        return;
      }
      const cfg = parsed.data as Record<string, unknown> & CommonTargetConfig;
      const endpointIssue = cfg.endpoint === undefined ? undefined : endpointProblem(cfg.endpoint, def.endpoint?.form);
      if (endpointIssue) {
        errors.add(() => new ConfigError(endpointIssue, nodePos(tree, [...base, 'endpoint']), fieldName([...base, 'endpoint'])));
        return;
      }
      const name = cfg.name ?? `${def.id}:${def.describe(cfg)}`;
      const position = nodePos(tree, base);
      const prev = seen.get(name);
      if (prev) {
        errors.add(
          () =>
            new ConfigError(
              `duplicate target name ${quoteInput(name)} (first at line ${prev.line}): give one of them a distinct name`,
              nodePos(tree, cfg.name ? [...base, 'name'] : base),
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
    for (const issue of top.error.issues.flatMap(unionBranchIssues)) errors.add(() => issueToError(tree, issue, []));
    // Check the targets too, so every mistake is reported in one pass.
    for (const [envName, targets] of rawTargetLists(data)) checkTargets(envName, targets);
    throw errors.toError();
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
      watch: env.watch === false ? undefined : (env.watch ?? config.watch),
    });
  }
  errors.throwIfAny();
  return { path: file, baseDir: dirname(file), config, environments };
}

/** Each environment's raw `targets:` list, as written, whatever else is wrong with the inventory. */
function rawTargetLists(data: object): Array<[string, unknown[]]> {
  const envs = (data as { environments?: unknown }).environments;
  if (!envs || typeof envs !== 'object' || Array.isArray(envs)) return [];
  return Object.entries(envs).flatMap(([name, env]) => {
    const targets = (env as { targets?: unknown } | null)?.targets;
    return Array.isArray(targets) ? [[name, targets] as [string, unknown[]]] : [];
  });
}

const targetSchemas = new WeakMap<TargetDefinition<any>, z.ZodType>();
/** A type's schema with the common fields, built once per type (zod compiles each schema it builds). */
function targetSchema(def: TargetDefinition<any>): z.ZodType {
  let schema = targetSchemas.get(def);
  if (!schema) targetSchemas.set(def, (schema = (def.schema as z.ZodObject).extend(CommonTargetFields).strict()));
  return schema;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** `environments.production.targets[2].type`; a segment that is not a plain name is quoted (and cut). */
function fieldName(path: Path): string {
  return path.reduce<string>((acc, p) => {
    if (typeof p === 'number') return `${acc}[${p}]`;
    const seg = /^[A-Za-z0-9_.-]{1,64}$/.test(String(p)) ? String(p) : quoteInput(String(p), 40);
    return acc ? `${acc}.${seg}` : seg;
  }, '');
}

/** The position of the node at `path`, or of its closest existing ancestor. */
function nodePos(tree: YamlTree, path: Path): SourcePosition {
  for (let n = path.length; n >= 0; n--) {
    const node = tree.nodeAt(path.slice(0, n));
    if (node?.range) return tree.pos(node.range[0]);
  }
  return tree.pos(0);
}

/** The position of a mapping's key (for unrecognized fields). */
function keyPos(tree: YamlTree, path: Path, key: string): SourcePosition {
  const node = tree.keyAt(path, key);
  return node?.range ? tree.pos(node.range[0]) : nodePos(tree, path);
}

/**
 * A union's own issue only says "Invalid input". When one branch accepts the value's type (a
 * mapping where a mapping or `false` is allowed), that branch's issues are the mistakes to report.
 */
function unionBranchIssues(issue: z.core.$ZodIssue): z.core.$ZodIssue[] {
  if (issue.code !== 'invalid_union' || !issue.errors.length) return [issue];
  const wrongType = (i: z.core.$ZodIssue) => i.path.length === 0 && (i.code === 'invalid_type' || i.code === 'invalid_value');
  const fitting = issue.errors.find((branch) => branch.length > 0 && !branch.some(wrongType));
  if (!fitting) return [issue];
  return fitting.flatMap((i) => unionBranchIssues({ ...i, path: [...issue.path, ...i.path] } as z.core.$ZodIssue));
}

/** "expected a mapping or false": what each branch of a union that fits nothing expected. */
function unionExpected(issue: z.core.$ZodIssue & { code: 'invalid_union' }): string | undefined {
  const wanted = issue.errors.flatMap((branch) =>
    branch.filter((i) => i.path.length === 0).map((i) =>
      i.code === 'invalid_type' ? (i.expected === 'object' ? 'a mapping' : i.expected) : i.code === 'invalid_value' ? i.values.map((v) => JSON.stringify(v)).join(' or ') : undefined,
    ),
  );
  return wanted.length && wanted.every(Boolean) ? `expected ${[...new Set(wanted)].join(' or ')}` : undefined;
}

function describeExpected(issue: z.core.$ZodIssue, path: Path, tree: YamlTree): string {
  if (issue.code === 'invalid_union') return unionExpected(issue) ?? issue.message;
  if (issue.code === 'invalid_type') {
    const expected = issue.expected === 'array' ? 'a list' : issue.expected === 'object' || issue.expected === 'record' ? 'a mapping' : issue.expected;
    const node = tree.nodeAt(path);
    if (node === undefined) return `required field missing: expected ${expected}`;
    const got = isSeq(node) ? 'a list' : isMap(node) ? 'a mapping' : isScalar(node) ? quoteInput(node.value) : 'something else';
    return `expected ${expected}, got ${got}`;
  }
  if (issue.code === 'invalid_value') {
    if (issue.values.length === 1) return `expected ${JSON.stringify(issue.values[0])}`;
    return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return issue.message;
}

function issueToError(tree: YamlTree, issue: z.core.$ZodIssue, base: Path, target?: { id: string; schema: z.ZodType }): ConfigError {
  const path: Path = [...base, ...issue.path];
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const where = target ? `a ${target.id} target` : fieldName(path) || 'the top level';
    const shown = issue.keys.slice(0, 5).map((k) => quoteInput(k, 40));
    const more = issue.keys.length > 5 ? ` and ${issue.keys.length - 5} more` : '';
    const known = target ? knownFields(target.schema, issue.path) : knownFields(InventoryConfig, path);
    return new ConfigError(
      `unknown field ${shown.join(', ')}${more} in ${where}${didYouMean(key, known)}${known.length ? `; fields: ${known.join(', ')}` : ''} (see keyrot's ${INVENTORY_DOCS})`,
      keyPos(tree, path, key),
      fieldName([...path, key]),
    );
  }
  return new ConfigError(describeExpected(issue, path, tree), nodePos(tree, path), fieldName(path));
}

/** Picks the environment: `-e NAME`, or the only one. */
export function selectEnvironment(inv: Inventory, name: string | undefined): Environment {
  const names = [...inv.environments.keys()];
  const listed = names.slice(0, 10).join(', ') + (names.length > 10 ? `, ... (${names.length - 10} more)` : '');
  if (name) {
    const env = inv.environments.get(name);
    if (!env) throw new ConfigError(`no environment ${quoteInput(name, 60)} in ${inv.path}${didYouMean(name, names)}; environments: ${listed}`);
    return env;
  }
  if (names.length === 1) return inv.environments.get(names[0]!)!;
  throw new ConfigError(`${inv.path} has ${names.length} environments (${listed}): choose one with -e NAME`);
}
