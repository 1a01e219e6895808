import { open } from 'node:fs/promises';
import { ConfigError, ConfigErrors, type SourcePosition } from '../core/errors.ts';

/**
 * An inventory lists targets: a few kilobytes. Anything past 1 MiB is the wrong file (a log, a
 * binary, a generated dump) or an attempt to make keyrot spend its time and memory on it.
 */
export const MAX_INVENTORY_BYTES = 1024 * 1024;

/**
 * Reads targets.yaml as text: at most MAX_INVENTORY_BYTES (read in bounded chunks, so a huge file
 * or an endless device costs nothing), valid UTF-8, and free of characters that have no place in a
 * file people review: NUL (a binary file), other control characters, and bidirectional overrides
 * that make an editor or a diff show something else than what keyrot reads.
 */
export async function readInventoryText(abs: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readAtMost(abs, MAX_INVENTORY_BYTES + 1);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigErrors([
      new ConfigError(
        code === 'ENOENT'
          ? `no inventory at ${abs}: write one with \`keyrot init\`, or pass -c PATH (or set KEYROT_CONFIG)`
          : code === 'EISDIR'
            ? `${abs} is a directory: pass the inventory file itself with -c PATH (e.g. -c ${abs}/targets.yaml)`
            : `cannot read the inventory ${abs} (${code})`,
      ),
    ]);
  }
  if (bytes.length > MAX_INVENTORY_BYTES) {
    throw new ConfigErrors([
      new ConfigError(
        `the inventory is larger than 1 MiB, which no targets.yaml is (it lists targets: a few kilobytes): check that -c names the right file`,
        { file: abs, line: 1, column: 1 },
      ),
    ]);
  }
  return decodeInventory(bytes, abs);
}

async function readAtMost(path: string, limit: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    while (total < limit) {
      const chunk = Buffer.alloc(Math.min(64 * 1024, limit - total));
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
    }
    return Buffer.concat(chunks);
  } finally {
    await fh.close();
  }
}

/** Control characters YAML does not allow in a document (YAML 1.2 §5.1 c-printable: tab, LF, CR and NEL are), and bidi controls. */
const FORBIDDEN_CHAR = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x84\x86-\x9f\u202a-\u202e\u2066-\u2069]/;

/** The bytes as text, or the error naming the first byte that makes them not an inventory. */
export function decodeInventory(bytes: Buffer, file: string): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    const where = positionOf(bytes.subarray(0, at).toString('utf8'), file);
    throw new ConfigErrors([
      new ConfigError(
        `the inventory is not UTF-8 text (byte 0x${bytes[at]!.toString(16).padStart(2, '0')} at offset ${at}${bytes.includes(0) ? '; it holds NUL bytes: a binary file?' : ''}): targets.yaml must be a UTF-8 YAML file`,
        where,
      ),
    ]);
  }
  const bad = FORBIDDEN_CHAR.exec(text);
  if (bad) {
    const code = bad[0].charCodeAt(0);
    const what =
      code === 0
        ? 'a NUL byte: this looks like a binary file, not YAML'
        : code >= 0x202a
          ? `a bidirectional control character (U+${code.toString(16).toUpperCase()}), which makes editors and diffs show the text in another order than keyrot reads it`
          : `a control character (U+${code.toString(16).toUpperCase().padStart(4, '0')}), which YAML does not allow and a terminal would obey`;
    throw new ConfigErrors([new ConfigError(`the inventory holds ${what}: remove it`, positionOf(text.slice(0, bad.index), file))]);
  }
  return text;
}

/** Offset of the first byte of an invalid UTF-8 sequence: a valid prefix re-encodes to the same bytes. */
function firstInvalidUtf8(bytes: Buffer): number {
  const reencoded = Buffer.from(bytes.toString('utf8'), 'utf8');
  let i = 0;
  while (i < bytes.length && bytes[i] === reencoded[i]) i++;
  return i;
}

/** The position just after `before` (the text preceding a character). */
export function positionOf(before: string, file: string): SourcePosition {
  const lineStart = before.lastIndexOf('\n') + 1;
  let line = 1;
  for (let i = before.indexOf('\n'); i >= 0; i = before.indexOf('\n', i + 1)) line++;
  return { file, line, column: before.length - lineStart + 1 };
}
