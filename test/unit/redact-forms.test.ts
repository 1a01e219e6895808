import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { redact } from '../../src/core/redact.ts';
import { Secret } from '../../src/core/secret.ts';

/**
 * The forms a known key takes in text that is not keyrot's: split across lines, base64 or
 * base64url at any byte offset inside a longer encoded text, hex, percent-encoded, JSON-escaped.
 * Property: whatever the key, the encoding and the text around it, nothing in the redacted output
 * decodes back to the key. Each oracle decodes independently of the redactor.
 */

/** Generic keys use every printable ASCII character but space; OpenAI keys their own alphabet. */
const genericKey = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 12, maxLength: 64 });
const openaiKey = fc
  .tuple(fc.constantFrom('sk-', 'sk-proj-', 'sk-svcacct-', 'sk-admin-'), fc.stringMatching(/^[A-Za-z0-9_-]{20,80}$/))
  .map(([p, s]) => p + s);
const key = fc.oneof(genericKey, openaiKey);
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
/** Words around the key: letters and punctuation, so they never decode into it by accident. */
const context = fc.stringMatching(/^[ a-z.,:;!?()'"{}[\]<>\n-]{0,40}$/);

type Encoded = { text: string; decode: (out: string) => string[] };

const noBreaks = (s: string) => s.replace(/\r?\n[ \t]*/g, '');
/** A terminal, a log shipper or MIME wrapping the text every `width` characters. */
const wrap = (s: string, width: number, indent: string) => (width >= s.length ? s : (s.match(new RegExp(`.{1,${width}}`, 'gs')) ?? []).join(`\n${indent}`));

/** Every decoding of the base64/hex runs in `out`, at every alignment. */
function decodeRuns(out: string, run: RegExp, alignments: number, decode: (s: string) => Buffer): string[] {
  return (noBreaks(out).match(run) ?? []).flatMap((r) => Array.from({ length: alignments }, (_, i) => decode(r.slice(i)).toString('latin1')));
}

const encodings = (k: string): fc.Arbitrary<Encoded> =>
  fc.oneof(
    // clear text split across lines at random places (with indentation)
    fc.tuple(fc.integer({ min: 1, max: 30 }), fc.constantFrom('', '  ', '\t')).map(([w, ind]) => ({ text: wrap(k, w, ind), decode: (o: string) => [noBreaks(o)] })),
    // base64 / base64url inside a longer payload: 0-5 bytes before (every alignment), any after, maybe wrapped
    fc.tuple(bytes(5), bytes(5), fc.constantFrom('base64', 'base64url') as fc.Arbitrary<BufferEncoding>, fc.integer({ min: 8, max: 200 })).map(([pre, post, enc, w]) => ({
      text: wrap(Buffer.concat([pre, Buffer.from(k), post]).toString(enc), w, ''),
      decode: (o: string) => decodeRuns(o, /[A-Za-z0-9+/_-]+/g, 4, (s) => Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64')),
    })),
    // hex, lower or upper case, maybe wrapped
    fc.tuple(fc.boolean(), fc.integer({ min: 8, max: 200 })).map(([upper, w]) => {
      const hex = Buffer.from(k).toString('hex');
      return { text: wrap(upper ? hex.toUpperCase() : hex, w, ''), decode: (o: string) => decodeRuns(o, /[0-9a-fA-F]+/g, 2, (s) => Buffer.from(s.slice(0, s.length - (s.length % 2)), 'hex')) };
    }),
    // percent-encoding: every character, or only some (what encodeURIComponent would, plus random others)
    fc.array(fc.boolean(), { minLength: k.length, maxLength: k.length }).map((which) => ({
      text: [...k].map((c, i) => (which[i] || !/[A-Za-z0-9_.~-]/.test(c) ? `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}` : c)).join(''),
      decode: (o: string) => [o.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)))],
    })),
    // JSON-escaped: JSON.stringify's own escapes, and \u00XX for some characters (\u002d for "-"...)
    fc.array(fc.boolean(), { minLength: k.length, maxLength: k.length }).map((which) => ({
      text: [...k].map((c, i) => (which[i] ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}` : JSON.stringify(c).slice(1, -1))).join(''),
      decode: (o: string) => [o.replace(/\\u([0-9a-fA-F]{4})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))).replace(/\\(["\\/])/g, '$1')],
    })),
  );

describe('redact: every form of a known key', () => {
  it('nothing in the output decodes back to the key (property over random keys, encodings and contexts)', () => {
    fc.assert(
      fc.property(
        key.chain((k) => fc.tuple(fc.constant(k), encodings(k), context, context)),
        ([k, enc, before, after]) => {
          const secret = new Secret(k);
          const out = redact(`${before}${enc.text}${after}`);
          for (const decoded of enc.decode(out)) expect(decoded.includes(k), `decoded: ${decoded}`).toBe(false);
          expect(out).toContain(secret.fingerprint);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('examples: each form is replaced by the mask, keeping the text around it', () => {
    const k = `generic-${'Ab3-_.+/'.repeat(4)}`;
    const s = new Secret(k);
    const mask = `[redacted ${s.hint} ${s.fingerprint}]`;
    expect(redact(`a ${k.slice(0, 10)}\n   ${k.slice(10)} b`)).toBe(`a ${mask} b`);
    expect(redact(`"v":"${JSON.stringify(k).slice(1, -1).replace(/-/g, '\\u002d')}"`)).toBe(`"v":"${mask}"`);
    expect(redact(encodeURIComponent(k))).toBe(mask);
    expect(redact(Buffer.from(k).toString('hex').toUpperCase())).toBe(mask);
  });
});
