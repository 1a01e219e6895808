import { Lexer, LineCounter, parseDocument, isAlias, isMap, isScalar, isSeq, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import { ConfigError, ConfigErrorList, ConfigErrors, type SourcePosition } from '../core/errors.ts';
import { positionOf } from './read.ts';
import { cut, quoteInput } from '../core/printable.ts';

export type Path = ReadonlyArray<PropertyKey>;

/** A parsed targets.yaml: its plain data, and where each piece of it was written. */
export interface YamlTree {
  doc: Document.Parsed;
  data: unknown;
  pos(offset: number | undefined): SourcePosition;
  /** The node of the value at `path` (aliases on the way followed), or undefined. */
  nodeAt(path: Path): Node | undefined;
  /** The key node of `key` in the mapping at `path`, or undefined. */
  keyAt(path: Path, key: string): Node | undefined;
}

/** Deeper than any inventory (they nest about 6 levels): a guard for every recursive walk after this one. */
const MAX_DEPTH = 64;
/**
 * How many values aliases may add in total. YAML aliases repeat a value without repeating its
 * text: nine nested aliases of nine make 387 million values from 400 bytes ("billion laughs").
 * Ordinary reuse (`*defaults` a few dozen times) stays far below.
 */
const MAX_ALIAS_EXPANSION = 100_000;

/**
 * Parses YAML into plain data in one linear pass of our own (instead of `toJS`, whose alias
 * resolution scans the whole document per alias and whose duplicate-key check compares every key
 * with every other), reporting duplicate keys, aliases that expand too much or point nowhere, and
 * non-text keys at their file:line:column. Throws ConfigErrors.
 */
export function parseYaml(text: string, file: string): YamlTree {
  const lineCounter = new LineCounter();
  const pos = (offset: number | undefined): SourcePosition => {
    const p = lineCounter.linePos(offset ?? 0);
    return { file, line: p.line, column: p.col };
  };
  const errors = new ConfigErrorList();
  const tooDeep = deepNesting(text);
  if (tooDeep !== undefined) {
    throw new ConfigErrors([new ConfigError(`collections nested more than ${MAX_DEPTH} levels deep, which no inventory is`, positionOf(text.slice(0, tooDeep), file))]);
  }
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  for (const e of doc.errors) {
    errors.add(() => new ConfigError(`YAML syntax: ${cut(e.message.split('\n')[0]!, 160)}`, pos(e.pos[0])));
  }
  errors.throwIfAny();
  const walk = new Walk(pos, errors);
  const data = walk.value(doc.contents, 0);
  errors.throwIfAny();
  return {
    doc,
    data,
    pos,
    nodeAt: (path) => walk.nodeAt(doc.contents, path),
    keyAt: (path, key) => {
      const parent = walk.follow(walk.nodeAt(doc.contents, path));
      return isMap(parent) ? (walk.pairs.get(parent)?.get(key)?.key as Node | undefined) : undefined;
    },
  };
}

/** A line opening more than MAX_DEPTH block collections at once ("- - - - ...", "? ? ? ..."). */
const COMPACT_NESTING = new RegExp(`^[ \\t]*(?:[-?][ \\t]+){${MAX_DEPTH + 1}}`, 'm');

/**
 * The offset of the first collection nested deeper than MAX_DEPTH on one line: compact block
 * collections, or flow collections ([ or {) found with the YAML lexer (linear; brackets inside
 * scalars and comments are not its flow tokens). The parser recurses per level and spends half a
 * minute on a megabyte of "[" before giving up. Block nesting by indentation is bounded by the
 * size limit (1,400 levels take a megabyte of spaces) and reported by the parser.
 */
function deepNesting(text: string): number | undefined {
  const compact = COMPACT_NESTING.exec(text);
  if (compact) return compact.index;
  let brackets = 0;
  for (let i = text.indexOf('['); i >= 0 && brackets <= MAX_DEPTH; i = text.indexOf('[', i + 1)) brackets++;
  for (let i = text.indexOf('{'); i >= 0 && brackets <= MAX_DEPTH; i = text.indexOf('{', i + 1)) brackets++;
  if (brackets <= MAX_DEPTH) return undefined; // cannot nest deeper than there are brackets
  let depth = 0;
  let offset = 0;
  for (const token of new Lexer().lex(text)) {
    if (token === '[' || token === '{') {
      if (++depth > MAX_DEPTH) return offset;
    } else if (token === ']' || token === '}') depth = Math.max(0, depth - 1);
    // The lexer's own markers (document start, scalar, flow end) are not source text.
    if (token !== '\x02' && token !== '\x1f' && token !== '\x18') offset += token.length;
  }
  return undefined;
}

interface Anchored {
  value: unknown;
  /** Values it stands for, aliases inside it counted expanded. */
  size: number;
}

/** The conversion: one visit per node, anchors remembered as they complete. */
class Walk {
  readonly pairs = new WeakMap<YAMLMap, Map<string, Pair>>();
  readonly #aliasTargets = new WeakMap<Node, Node>();
  readonly #anchors = new Map<string, Anchored & { node: Node }>();
  #expanded = 0;
  #size = 0;

  readonly pos: (offset: number | undefined) => SourcePosition;
  readonly errors: ConfigErrorList;

  constructor(pos: (offset: number | undefined) => SourcePosition, errors: ConfigErrorList) {
    this.pos = pos;
    this.errors = errors;
  }

  value(node: Node | null | undefined, depth: number): unknown {
    if (node == null) return null;
    const at = () => this.pos(node.range?.[0]);
    if (depth > MAX_DEPTH) {
      this.errors.add(() => new ConfigError(`nested more than ${MAX_DEPTH} levels deep, which no inventory is`, at()));
      return null;
    }
    if (isAlias(node)) return this.#alias(node, at);
    const start = this.#size++;
    let value: unknown;
    if (isScalar(node)) value = node.value;
    else if (isSeq(node)) value = node.items.map((item) => this.value(item as Node, depth + 1));
    else if (isMap(node)) value = this.#map(node, depth);
    else value = null;
    const anchor = (node as { anchor?: string }).anchor;
    if (anchor) this.#anchors.set(anchor, { node, value, size: this.#size - start });
    return value;
  }

  #alias(node: Node & { source: string }, at: () => SourcePosition): unknown {
    const target = this.#anchors.get(node.source);
    if (!target) {
      this.errors.add(() => new ConfigError(`the alias *${cut(node.source, 40)} refers to no anchor &${cut(node.source, 40)} completed before it`, at()));
      return null;
    }
    this.#aliasTargets.set(node, target.node);
    this.#expanded += target.size;
    this.#size += target.size;
    if (this.#expanded > MAX_ALIAS_EXPANSION) {
      this.errors.add(
        () =>
          new ConfigError(
            `aliases expand this document to more than ${MAX_ALIAS_EXPANSION} values (nested aliases, a "billion laughs" document): write the values out, or alias them fewer times`,
            at(),
          ),
      );
      this.#expanded = -Infinity; // reported once
      return null;
    }
    return target.value;
  }

  #map(node: YAMLMap, depth: number): Record<string, unknown> {
    const index = new Map<string, Pair>();
    this.pairs.set(node, index);
    const entries: Array<[string, unknown]> = [];
    for (const pair of node.items) {
      const keyNode = this.follow(pair.key as Node | null);
      const keyAt = () => this.pos((pair.key as Node | null)?.range?.[0] ?? (pair.value as Node | null)?.range?.[0]);
      if (keyNode != null && !isScalar(keyNode)) {
        this.errors.add(() => new ConfigError('a mapping key must be plain text, not a list or a mapping', keyAt()));
        continue;
      }
      if (isAlias(pair.key)) this.value(pair.key as Node, depth + 1);
      const key = keyNode == null || keyNode.value == null ? '' : String(keyNode.value);
      const first = index.get(key);
      if (first) {
        const line = this.pos((first.key as Node).range?.[0]).line;
        this.errors.add(() => new ConfigError(`duplicate key ${quoteInput(key, 60)} (first at line ${line}): write each key once per mapping`, keyAt()));
        continue;
      }
      index.set(key, pair);
      entries.push([key, this.value(pair.value as Node | null, depth + 1)]);
    }
    // fromEntries defines own properties: a "__proto__" key stays a key, it does not set the prototype.
    return Object.fromEntries(entries);
  }

  /** An alias's anchored node; any other node itself. */
  follow(node: Node | null | undefined): Node | null | undefined {
    return node && isAlias(node) ? (this.#aliasTargets.get(node) ?? this.#anchors.get(node.source)?.node) : node;
  }

  nodeAt(root: Node | null | undefined, path: Path): Node | undefined {
    let node: Node | null | undefined = root;
    for (const seg of path) {
      const here = this.follow(node);
      if (isMap(here)) node = this.pairs.get(here)?.get(String(seg))?.value as Node | undefined;
      else if (isSeq(here) && typeof seg === 'number') node = here.items[seg] as Node | undefined;
      else return undefined;
      if (node == null) return undefined;
    }
    return node ?? undefined;
  }
}
