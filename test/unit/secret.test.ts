import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { format, inspect } from 'node:util';
import { Secret, fingerprint, hint, knownSecretValues, registerSensitive } from '../../src/core/secret.ts';
import { testKey } from '../helpers/keys.ts';

describe('Secret never leaks its value', () => {
  const value = testKey();
  const s = new Secret(value);

  it('String(), template literals and concatenation give the hint and fingerprint only', () => {
    for (const out of [String(s), `${s}`, '' + s, s.toString(), [s].join(',')]) {
      expect(out).not.toContain(value);
      expect(out).toContain(s.fingerprint);
      expect(out).toContain(s.hint);
    }
  });

  it('JSON.stringify (alone and nested) gives { hint, fingerprint }', () => {
    expect(JSON.parse(JSON.stringify(s))).toEqual({ hint: s.hint, fingerprint: s.fingerprint });
    const nested = JSON.stringify({ target: 'x', keys: [s], deep: { s } });
    expect(nested).not.toContain(value);
    expect(nested).toContain(s.fingerprint);
  });

  it('util.inspect / util.format / console-style formatting', () => {
    const outs = [
      inspect(s),
      inspect({ a: { b: { c: s } } }, { depth: 10 }),
      inspect(s, { customInspect: false, showHidden: true }),
      format('%s %o %O %j', s, s, s, s),
      format(s),
    ];
    for (const out of outs) expect(out).not.toContain(value);
    expect(inspect(s)).toBe(`Secret<${s.hint} (${s.fingerprint})>`);
  });

  it('enumeration, spread and structuredClone expose no value', () => {
    expect(Object.values(s).join(' ')).not.toContain(value);
    expect(JSON.stringify({ ...s })).not.toContain(value);
    expect(JSON.stringify(structuredClone(s))).not.toContain(value);
    // fingerprint is a getter (it follows useKeyedFingerprints), so hint is the only own property.
    expect(Object.getOwnPropertyNames(s).sort()).toEqual(['hint']);
  });

  it('an Error built from it carries no value', () => {
    const e = new Error(`could not write ${s}`);
    expect(e.message).not.toContain(value);
    expect(inspect(e)).not.toContain(value);
  });

  it('reveal() is the only way to the value', () => {
    expect(s.reveal()).toBe(value);
  });
});

describe('Secret identity, fingerprint and hint', () => {
  it('fingerprint is the first 12 hex chars of SHA-256', () => {
    const v = testKey();
    expect(fingerprint(v)).toBe(createHash('sha256').update(v).digest('hex').slice(0, 12));
    expect(new Secret(v).fingerprint).toMatch(/^[0-9a-f]{12}$/);
  });

  it('hint shows the prefix family and the last 4 characters only', () => {
    const proj = testKey('sk-proj-');
    expect(hint(proj)).toBe(`sk-proj-...${proj.slice(-4)}`);
    const svc = testKey('sk-svcacct-');
    expect(hint(svc)).toBe(`sk-svcacct-...${svc.slice(-4)}`);
    const legacy = testKey('sk-');
    expect(hint(legacy)).toBe(`sk-...${legacy.slice(-4)}`);
    expect(hint('generic-token-value-long')).toBe('...long');
    // Values shorter than 20 characters give no tail at all: 4 known characters of a short secret
    // narrow a guess (a 19-character value is short: no tail).
    expect(hint('generic-token-value')).toBe('***');
    expect(hint('short1')).toBe('***');
  });

  it('equals compares values, never throws on null', () => {
    const v = testKey();
    expect(new Secret(v).equals(new Secret(v))).toBe(true);
    expect(new Secret(v).equals(new Secret(testKey()))).toBe(false);
    expect(new Secret(v).equals(null)).toBe(false);
    expect(new Secret(v).equals(undefined)).toBe(false);
  });

  it('an empty secret is refused', () => {
    expect(() => new Secret('')).toThrow(TypeError);
  });

  it('every Secret and registered credential is known to the redactor, longest first', () => {
    const a = testKey();
    const b = `${a}-longer`;
    new Secret(a);
    registerSensitive(b);
    registerSensitive('abc'); // too short to be redacted everywhere
    const known = knownSecretValues();
    expect(known).toContain(a);
    expect(known).toContain(b);
    expect(known).not.toContain('abc');
    expect(known.indexOf(b)).toBeLessThan(known.indexOf(a));
  });
});
