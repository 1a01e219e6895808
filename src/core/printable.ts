import { redact } from './redact.ts';

/**
 * Text from outside keyrot (provider answers, file contents, names in targets.yaml) made safe to
 * print. A terminal obeys control characters: an error body can clear the screen (CSI 2J), move
 * the cursor to overwrite a line with a fake "Rotation complete" (CR, CSI), retitle the window or
 * write the clipboard (OSC 0 / OSC 52), and bidirectional overrides reorder what is shown
 * ("Trojan Source", CVE-2021-42574). Sources: ECMA-48 (C0/C1 controls, CSI), xterm's
 * ctlseqs (OSC 52 "Manipulate Selection Data"), Unicode UAX #9 (explicit directional formatting).
 */

/** C0 controls but \t and \n, DEL, C1 controls, and the bidirectional embeddings/overrides/isolates. */
const UNSAFE_CHAR = '[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]';
/**
 * Whole 7-bit escape sequences (so no "[2J" residue stays): CSI, the OSC/DCS/SOS/PM/APC strings
 * (up to their terminator, or the end of the line), and two-byte ESC x. An 8-bit C1 control is
 * removed as one character by UNSAFE_CHAR.
 */
const ESCAPE_SEQUENCE = '\\x1b\\[[0-?]*[ -/]*[@-~]|\\x1b[\\]PX^_][^\\x07\\x1b\\x9c\\n]*(?:\\x07|\\x1b\\\\|\\x9c)?|\\x1b[ -~]';
const UNSAFE = new RegExp(`${ESCAPE_SEQUENCE}|${UNSAFE_CHAR}`, 'g');
/** The colours keyrot itself writes (cli/output.ts): reset, bold, dim, red, green, yellow. */
const OWN_COLOUR = /^\x1b\[(?:0|1|2|31|32|33)m$/;

/** Removes every control character and escape sequence but \n and \t (a CR alone would let text overwrite its line). */
export function stripControls(text: string): string {
  return text.replace(UNSAFE, '');
}

/**
 * The output boundary: what reaches stdout/stderr. Like `stripControls`, but keyrot's own colour
 * codes stay. Text from outside has already lost its escapes where it entered (errors, provider
 * messages), so a colour code here was written by keyrot.
 */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, (m) => (OWN_COLOUR.test(m) ? m : ''));
}

/** Serialised JSON for output: JSON.stringify escapes C0 but leaves DEL, C1 and bidi controls raw. */
export function jsonSafe(json: string): string {
  return json.replace(/[\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** At most `max` characters, an ellipsis marking the cut. */
export function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/**
 * A piece of user input quoted in a message: JSON-quoted with every control character escaped,
 * at most `max` characters of it, and its length when cut (a 10 MB value gives an 80-character quote).
 */
export function quoteInput(value: unknown, max = 80): string {
  if (typeof value !== 'string') {
    // A number, boolean or null reads as itself (42, true, null).
    const shown = jsonSafe(JSON.stringify(value) ?? String(value));
    return shown.length > max ? `${shown.slice(0, max)}… (${shown.length} characters)` : shown;
  }
  const text = value;
  const quoted = jsonSafe(JSON.stringify(text.length > max ? text.slice(0, max) : text));
  return text.length > max ? `${quoted.slice(0, -1)}…" (${text.length} characters)` : quoted;
}

/** The longest provider message keyrot prints: enough for a sentence and an id, not a page. */
export const PROVIDER_TEXT_MAX = 300;

/**
 * A provider's own message, as printed: one line, no control characters, no key or token (the
 * redactor runs on the stripped text, so escape codes cannot split a key out of its reach), cut
 * after redaction (a key across the cut would otherwise survive in part).
 */
export function providerText(message: string, max = PROVIDER_TEXT_MAX): string {
  return cut(redact(stripControls(message.replace(/\s+/g, ' ')).trim()), max);
}

/** Text on its way to the terminal or a log: redacted, and free of control sequences but keyrot's colours. */
export function printable(text: string): string {
  return terminalSafe(redact(text));
}

/** A JSON document on its way out (--json, JSON log lines): redacted, C1 and bidi controls escaped. */
export function printableJson(json: string): string {
  return jsonSafe(redact(json));
}
