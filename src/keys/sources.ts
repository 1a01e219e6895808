import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError, ExitError, EXIT } from '../core/errors.ts';
import { Secret } from '../core/secret.ts';

export interface KeySourceContext {
  baseDir: string;
  env: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** An interactive terminal is attached (prompt allowed). */
  interactive: boolean;
  /** Reads a hidden line from the terminal (injected; @inquirer/password by default). */
  promptHidden?: (message: string) => Promise<string>;
  label?: string;
}

/**
 * Obtains the new key from `prompt | stdin | env:VAR | file:PATH`. The key never comes from argv
 * (visible in `ps`) and is never written anywhere by keyrot. `openai-admin` minting is a separate
 * interface (keys/openai-admin).
 */
export async function obtainKey(source: string, ctx: KeySourceContext): Promise<Secret> {
  const label = ctx.label ?? 'new key';
  if (source === 'prompt') {
    if (!ctx.interactive || !ctx.promptHidden) {
      throw new ExitError(
        EXIT.usage,
        `the key source is "prompt" but there is no terminal to ask on: pass --new-key stdin (and pipe the key), env:VAR or file:PATH`,
      );
    }
    const a = (await ctx.promptHidden(`Paste the ${label} (input hidden):`)).trim();
    if (!a) throw new ExitError(EXIT.usage, `no ${label} entered`);
    const b = (await ctx.promptHidden(`Paste it again to confirm:`)).trim();
    if (a !== b) throw new ExitError(EXIT.usage, `the two entries differ: nothing was changed, run the command again`);
    return new Secret(a);
  }
  if (source === 'stdin') {
    if (ctx.stdin.isTTY) {
      throw new ExitError(EXIT.usage, `--new-key stdin expects the key piped in (e.g. \`pbpaste | keyrot rotate --new-key stdin\`), not typed: use --new-key prompt for hidden typing`);
    }
    const line = await readFirstLine(ctx.stdin);
    if (!line) throw new ExitError(EXIT.usage, `standard input was empty: pipe the ${label} in, one line`);
    return new Secret(line);
  }
  if (source.startsWith('env:')) {
    const name = source.slice(4);
    const v = ctx.env[name]?.trim();
    if (!v) throw new ExitError(EXIT.usage, `the key source ${source} is not set: export ${name} with the ${label}`);
    return new Secret(v);
  }
  if (source.startsWith('file:')) {
    const p = source.slice(5);
    const path = isAbsolute(p) ? p : resolve(ctx.baseDir, p);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new ExitError(EXIT.usage, `cannot read the key source ${source} (${(err as NodeJS.ErrnoException).code}): ${path}`);
    }
    const v = text.trim();
    if (!v) throw new ExitError(EXIT.usage, `the key source ${source} is empty: ${path}`);
    if (/\s/.test(v)) throw new ExitError(EXIT.usage, `the key source ${source} must hold only the key (one line): ${path}`);
    return new Secret(v);
  }
  if (source === 'openai-admin') {
    // Minting happens in the engine's rotation (cli/context.ts obtainNewKey); a minted key cannot
    // be fetched again (its value is shown once), so other uses (resume --new-key) are refused.
    throw new ExitError(
      EXIT.usage,
      'openai-admin mints a new key at the start of a rotation and cannot give an existing key again: omit --new-key (resume reads the key back from a target that holds it) or pass env:VAR / file:PATH',
    );
  }
  throw new ConfigError(`unknown key source "${source}": expected prompt, stdin, env:VAR, file:PATH or openai-admin`);
}

async function readFirstLine(stream: NodeJS.ReadableStream): Promise<string> {
  let buf = '';
  for await (const chunk of stream) {
    buf += chunk.toString();
    const nl = buf.indexOf('\n');
    if (nl >= 0) {
      buf = buf.slice(0, nl);
      break;
    }
    if (buf.length > 64 * 1024) break;
  }
  return buf.replace(/\r$/, '').trim();
}

/** What `--new-key`/`key.source` is, for the journal (never the value). */
export function describeSource(source: string): string {
  return source;
}
