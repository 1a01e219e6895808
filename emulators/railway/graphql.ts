/**
 * Just enough GraphQL for the Railway emulator: parses an executable document (one or more
 * operations, variables with defaults, aliases, nested selections, literals of every kind) and
 * projects resolver results onto the selection set, so a client gets exactly the fields it asked
 * for and an unknown field is a validation error, as on a real GraphQL server. Fragments and
 * directives are not supported (no client keyrot uses sends them) and are reported as errors.
 */

export type GqlValue = string | number | boolean | null | GqlValue[] | { [k: string]: GqlValue };

export interface Field {
  alias?: string;
  name: string;
  args: Record<string, ValueNode>;
  selections?: Field[];
  line: number;
  column: number;
}

export interface Operation {
  kind: 'query' | 'mutation';
  name?: string;
  variables: Array<{ name: string; type: string; default?: ValueNode }>;
  selections: Field[];
}

export type ValueNode =
  | { kind: 'var'; name: string }
  | { kind: 'literal'; value: GqlValue }
  | { kind: 'list'; items: ValueNode[] }
  | { kind: 'object'; fields: Record<string, ValueNode> };

export class GqlSyntaxError extends Error {
  readonly line: number;
  readonly column: number;
  constructor(message: string, line: number, column: number) {
    super(message);
    this.line = line;
    this.column = column;
  }
}

interface Token {
  kind: 'punct' | 'name' | 'string' | 'number' | 'eof';
  value: string;
  line: number;
  column: number;
}

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const at = () => ({ line, column: i - lineStart + 1 });
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === ',' || c === '\ufeff') {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    const pos = at();
    if (src.startsWith('...', i)) throw new GqlSyntaxError('Fragments are not supported by this emulator.', pos.line, pos.column);
    if ('{}()[]:!$=@'.includes(c)) {
      out.push({ kind: 'punct', value: c, ...pos });
      i++;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[A-Za-z0-9_]/.test(src[j]!)) j++;
      out.push({ kind: 'name', value: src.slice(i, j), ...pos });
      i = j;
      continue;
    }
    if (/[-0-9]/.test(c)) {
      const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(src.slice(i));
      if (!m) throw new GqlSyntaxError(`Syntax Error: Invalid number.`, pos.line, pos.column);
      out.push({ kind: 'number', value: m[0], ...pos });
      i += m[0].length;
      continue;
    }
    if (c === '"') {
      if (src.startsWith('"""', i)) {
        const end = src.indexOf('"""', i + 3);
        if (end < 0) throw new GqlSyntaxError('Syntax Error: Unterminated string.', pos.line, pos.column);
        const raw = src.slice(i + 3, end);
        out.push({ kind: 'string', value: raw.replace(/\\"""/g, '"""'), ...pos });
        for (const ch of raw) if (ch === '\n') line++;
        i = end + 3;
        continue;
      }
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\n') throw new GqlSyntaxError('Syntax Error: Unterminated string.', pos.line, pos.column);
        if (src[j] === '\\') {
          const e = src[j + 1];
          const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '"': '"', '\\': '\\', '/': '/' };
          if (e === 'u') {
            s += String.fromCharCode(parseInt(src.slice(j + 2, j + 6), 16));
            j += 6;
            continue;
          }
          s += map[e ?? ''] ?? e ?? '';
          j += 2;
          continue;
        }
        s += src[j];
        j++;
      }
      if (j >= src.length) throw new GqlSyntaxError('Syntax Error: Unterminated string.', pos.line, pos.column);
      out.push({ kind: 'string', value: s, ...pos });
      i = j + 1;
      continue;
    }
    throw new GqlSyntaxError(`Syntax Error: Unexpected character: "${c}".`, pos.line, pos.column);
  }
  out.push({ kind: 'eof', value: '', line, column: i - lineStart + 1 });
  return out;
}

class Parser {
  private i = 0;
  private readonly t: Token[];
  constructor(src: string) {
    this.t = tokenize(src);
  }
  private peek(): Token {
    return this.t[this.i]!;
  }
  private next(): Token {
    return this.t[this.i++]!;
  }
  private fail(tok: Token, what: string): never {
    throw new GqlSyntaxError(`Syntax Error: Expected ${what}, found ${tok.kind === 'eof' ? '<EOF>' : `"${tok.value}"`}.`, tok.line, tok.column);
  }
  private punct(p: string): Token {
    const tok = this.next();
    if (tok.kind !== 'punct' || tok.value !== p) this.fail(tok, `"${p}"`);
    return tok;
  }
  private isPunct(p: string): boolean {
    const tok = this.peek();
    return tok.kind === 'punct' && tok.value === p;
  }
  private name(): Token {
    const tok = this.next();
    if (tok.kind !== 'name') this.fail(tok, 'Name');
    return tok;
  }

  document(): Operation[] {
    const ops: Operation[] = [];
    while (this.peek().kind !== 'eof') ops.push(this.operation());
    if (ops.length === 0) this.fail(this.peek(), 'an operation');
    return ops;
  }

  private operation(): Operation {
    if (this.isPunct('{')) return { kind: 'query', variables: [], selections: this.selectionSet() };
    const kw = this.name();
    if (kw.value !== 'query' && kw.value !== 'mutation') {
      throw new GqlSyntaxError(`Syntax Error: Unexpected Name "${kw.value}".`, kw.line, kw.column);
    }
    const op: Operation = { kind: kw.value, variables: [], selections: [] };
    if (this.peek().kind === 'name') op.name = this.name().value;
    if (this.isPunct('(')) {
      this.punct('(');
      while (!this.isPunct(')')) {
        this.punct('$');
        const name = this.name().value;
        this.punct(':');
        const type = this.type();
        let def: ValueNode | undefined;
        if (this.isPunct('=')) {
          this.punct('=');
          def = this.value();
        }
        op.variables.push({ name, type, ...(def ? { default: def } : {}) });
      }
      this.punct(')');
    }
    if (this.isPunct('@')) this.fail(this.peek(), 'a selection set (directives are not supported)');
    op.selections = this.selectionSet();
    return op;
  }

  private type(): string {
    let t: string;
    if (this.isPunct('[')) {
      this.punct('[');
      t = `[${this.type()}]`;
      this.punct(']');
    } else {
      t = this.name().value;
    }
    if (this.isPunct('!')) {
      this.punct('!');
      t += '!';
    }
    return t;
  }

  private selectionSet(): Field[] {
    this.punct('{');
    const out: Field[] = [];
    while (!this.isPunct('}')) out.push(this.field());
    this.punct('}');
    if (out.length === 0) this.fail(this.peek(), 'a field');
    return out;
  }

  private field(): Field {
    const first = this.name();
    let alias: string | undefined;
    let name = first.value;
    if (this.isPunct(':')) {
      this.punct(':');
      alias = first.value;
      name = this.name().value;
    }
    const args: Record<string, ValueNode> = {};
    if (this.isPunct('(')) {
      this.punct('(');
      while (!this.isPunct(')')) {
        const n = this.name().value;
        this.punct(':');
        args[n] = this.value();
      }
      this.punct(')');
    }
    if (this.isPunct('@')) this.fail(this.peek(), 'a field (directives are not supported)');
    const f: Field = { name, args, line: first.line, column: first.column, ...(alias ? { alias } : {}) };
    if (this.isPunct('{')) f.selections = this.selectionSet();
    return f;
  }

  private value(): ValueNode {
    const tok = this.peek();
    if (tok.kind === 'punct' && tok.value === '$') {
      this.next();
      return { kind: 'var', name: this.name().value };
    }
    if (tok.kind === 'punct' && tok.value === '[') {
      this.next();
      const items: ValueNode[] = [];
      while (!this.isPunct(']')) items.push(this.value());
      this.punct(']');
      return { kind: 'list', items };
    }
    if (tok.kind === 'punct' && tok.value === '{') {
      this.next();
      const fields: Record<string, ValueNode> = {};
      while (!this.isPunct('}')) {
        const n = this.name().value;
        this.punct(':');
        fields[n] = this.value();
      }
      this.punct('}');
      return { kind: 'object', fields };
    }
    this.next();
    if (tok.kind === 'string') return { kind: 'literal', value: tok.value };
    if (tok.kind === 'number') return { kind: 'literal', value: Number(tok.value) };
    if (tok.kind === 'name') {
      if (tok.value === 'true') return { kind: 'literal', value: true };
      if (tok.value === 'false') return { kind: 'literal', value: false };
      if (tok.value === 'null') return { kind: 'literal', value: null };
      return { kind: 'literal', value: tok.value }; // enum value
    }
    return this.fail(tok, 'a value');
  }
}

export function parseDocument(src: string): Operation[] {
  return new Parser(src).document();
}

/** Resolves a value node against the request's variables (undefined when a variable is absent). */
export function resolveValue(node: ValueNode, vars: Record<string, unknown>): unknown {
  switch (node.kind) {
    case 'var':
      return vars[node.name];
    case 'literal':
      return node.value;
    case 'list':
      return node.items.map((n) => resolveValue(n, vars));
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node.fields)) {
        const r = resolveValue(v, vars);
        if (r !== undefined) out[k] = r;
      }
      return out;
    }
  }
}

/** An object type of the emulator's data: `__typename` names it in "Cannot query field" errors. */
export type GqlObject = { __typename: string } & Record<string, unknown>;

export class GqlFieldError extends Error {
  readonly field: Field;
  constructor(message: string, field: Field) {
    super(message);
    this.field = field;
  }
}

/**
 * Projects a resolved value onto a selection set. Scalars (including JSON scalars such as
 * Railway's `EnvironmentVariables`) must not have a selection; objects must have one, and every
 * selected field must exist on the object.
 */
export function project(value: unknown, field: Field): unknown {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return value.map((v) => project(v, field));
  const isObject = typeof value === 'object' && value !== null && '__typename' in value;
  if (!isObject) {
    if (field.selections) throw new GqlFieldError(`Field "${field.name}" must not have a selection since its type has no subfields.`, field);
    return value;
  }
  const obj = value as GqlObject;
  if (!field.selections) throw new GqlFieldError(`Field "${field.name}" of type "${obj.__typename}" must have a selection of subfields.`, field);
  const out: Record<string, unknown> = {};
  for (const sel of field.selections) {
    if (sel.name === '__typename') {
      out[sel.alias ?? sel.name] = obj.__typename;
      continue;
    }
    if (!(sel.name in obj)) throw new GqlFieldError(`Cannot query field "${sel.name}" on type "${obj.__typename}".`, sel);
    out[sel.alias ?? sel.name] = project(obj[sel.name], sel);
  }
  return out;
}
