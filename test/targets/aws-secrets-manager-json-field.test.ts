import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { JsonFieldError, getJsonField, setJsonField } from '../../src/targets/aws-secrets-manager/json-field.ts';
import { versionTokenFor } from '../../src/targets/aws-secrets-manager/version-token.ts';
import { testKey } from '../helpers/keys.ts';

describe('aws-secrets-manager JSON field replacer', () => {
  const odd =
    '  {\n' +
    '\t"DB_URL" :  "postgres://db/app?x=1",\r\n' +
    '    "nested": {"OPENAI_API_KEY": "not-me", "list": [1, "}", {"a": "\\"]"}]},\n' +
    '  "caf\\u00e9": "na\\u00efve \\/ 😀 ü",\n' +
    '\t\t"OPENAI_API_KEY":"old-value"   ,   "n": 1e3, "t": true, "z": null\n' +
    '}  \n';

  it('replaces only the field literal: every other byte is identical', () => {
    const key = testKey();
    const out = setJsonField(odd, 'OPENAI_API_KEY', key);
    const at = odd.indexOf('"old-value"');
    expect(out.slice(0, at)).toBe(odd.slice(0, at));
    expect(out.slice(at + key.length + 2)).toBe(odd.slice(at + '"old-value"'.length));
    expect(getJsonField(out, 'OPENAI_API_KEY')).toBe(key);
    // The nested field of the same name is not the top-level one and stays.
    expect(JSON.parse(out).nested.OPENAI_API_KEY).toBe('not-me');
    expect(JSON.parse(out)['café']).toBe('naïve / 😀 ü');
  });

  it('escapes what JSON requires in the new value', () => {
    const v = 'a"b\\c\n\u0001é😀';
    const out = setJsonField('{"k":"x","o":1}', 'k', v);
    expect(out).toBe(`{"k":${JSON.stringify(v)},"o":1}`);
    expect(getJsonField(out, 'k')).toBe(v);
  });

  it('is a no-op when the field already holds the value (keeps its exact escaping)', () => {
    const text = '{ "k" : "\\u0061bc" }';
    expect(setJsonField(text, 'k', 'abc')).toBe(text);
  });

  it('appends an absent field copying the layout of the last member', () => {
    expect(setJsonField('{\n  "a": "1",\n  "b": "2"\n}', 'K', 'v')).toBe('{\n  "a": "1",\n  "b": "2",\n  "K": "v"\n}');
    expect(setJsonField('{"a":"1"}', 'K', 'v')).toBe('{"a":"1","K":"v"}');
    expect(setJsonField('{}', 'K', 'v')).toBe('{"K":"v"}');
    expect(setJsonField('{ }', 'K', 'v')).toBe('{"K":"v" }');
  });

  it('replaces every occurrence of a duplicated key; reads the last (JSON.parse semantics)', () => {
    const text = '{"k":"1","x":"y","k":"2"}';
    expect(getJsonField(text, 'k')).toBe('2');
    expect(setJsonField(text, 'k', 'n')).toBe('{"k":"n","x":"y","k":"n"}');
  });

  it('refuses non-JSON, non-objects and non-string fields', () => {
    expect(() => getJsonField('plain-text', 'k')).toThrow(JsonFieldError);
    expect(() => getJsonField('[1,2]', 'k')).toThrow(/not an object/);
    expect(() => getJsonField('{"k": 5}', 'k')).toThrow(/number, not a string/);
    expect(() => setJsonField('{"k": null}', 'k', 'v')).toThrow(/null, not a string/);
    expect(getJsonField('{"other":"1"}', 'k')).toBeNull();
  });

  it('property: for any JSON object, only the field changes', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string().filter((k) => k !== 'FIELD' && k !== '__proto__'), fc.jsonValue()),
        fc.string(),
        fc.string(),
        fc.integer({ min: 0, max: 4 }),
        (obj, before, after, indent) => {
          const text = JSON.stringify({ ...obj, FIELD: before }, null, indent);
          const out = setJsonField(text, 'FIELD', after);
          const parsed = JSON.parse(out) as Record<string, unknown>;
          expect(parsed.FIELD).toBe(after);
          // Every other member keeps its exact text: re-serialising the rest gives the same bytes.
          const start = text.lastIndexOf(JSON.stringify('FIELD'));
          expect(out.slice(0, start)).toBe(text.slice(0, start));
          expect(out.endsWith(text.slice(text.lastIndexOf(JSON.stringify(before)) + JSON.stringify(before).length))).toBe(true);
        },
      ),
    );
  });
});

describe('aws-secrets-manager version token', () => {
  it('is 32–64 characters, deterministic, and marks keyrot versions', () => {
    for (const id of ['rot_x', 'rot_conf_aws-secrets-manager', `rot_${'a'.repeat(40)}`, `rot_${'b'.repeat(100)}`, 'weird id/ü', '2026-01-01T00-00-00Z_abc']) {
      const t = versionTokenFor(id);
      expect(t.length).toBeGreaterThanOrEqual(32);
      expect(t.length).toBeLessThanOrEqual(64);
      expect(t).toMatch(/^rot_[A-Za-z0-9_-]+$/);
      expect(versionTokenFor(id)).toBe(t);
    }
    const exact = `rot_${'a'.repeat(40)}`;
    expect(versionTokenFor(exact)).toBe(exact);
    expect(versionTokenFor('rot_a')).not.toBe(versionTokenFor('rot_b'));
    // Long ids that share a prefix still get distinct tokens.
    expect(versionTokenFor(`rot_${'c'.repeat(70)}1`)).not.toBe(versionTokenFor(`rot_${'c'.repeat(70)}2`));
  });
});
