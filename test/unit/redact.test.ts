import { describe, it, expect } from 'vitest';
import { redact, redactValue } from '../../src/core/redact.ts';
import { Secret, fingerprint, registerSensitive } from '../../src/core/secret.ts';
import { ConfigError, TargetError } from '../../src/core/errors.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import { randomBytes } from 'node:crypto';
import { testKey } from '../helpers/keys.ts';

/** A random alphanumeric string (no key literal lives in this file). */
const rand = (n: number) => randomBytes(n).toString('base64url').replace(/[-_]/g, 'x').slice(0, n);

describe('redact: known values', () => {
  it('removes the exact value of every Secret this process created, anywhere in the text', () => {
    const v = `generic-${rand(24)}`; // no well-known pattern: only the known-values net catches it
    const s = new Secret(v);
    const out = redact(`before ${v} middle ${v}after`);
    expect(out).not.toContain(v);
    expect(out).toBe(`before [redacted ${s.hint} ${s.fingerprint}] middle [redacted ${s.hint} ${s.fingerprint}]after`);
  });

  it('removes registered provider credentials', () => {
    const token = `tok${rand(20)}`;
    registerSensitive(token);
    const out = redact(`401 from provider for token=${token};`);
    expect(out).not.toContain(token);
    expect(out).toContain(fingerprint(token));
  });

  it('a value containing another known value is replaced whole', () => {
    const inner = `inner${rand(16)}`;
    const outer = `${inner}${rand(8)}`;
    registerSensitive(inner);
    registerSensitive(outer);
    const out = redact(`x ${outer} y`);
    expect(out).not.toContain(inner);
    expect(out).toContain(fingerprint(outer));
  });

  it('leaves text without secrets unchanged', () => {
    const text = 'wrote backend/.env (fingerprint 0123456789ab), 3 targets, https://api.example.com/v1/models';
    expect(redact(text)).toBe(text);
  });
});

describe('redact: patterns of keys it never saw', () => {
  it('OpenAI keys of every family, at any offset, several per line', () => {
    for (const prefix of ['sk-', 'sk-proj-', 'sk-svcacct-', 'sk-admin-']) {
      const k1 = prefix + rand(40); // built here, never registered as a Secret
      const k2 = prefix + rand(48);
      for (const text of [k1, `error: ${k1}`, `{"key":"${k1}","other":"${k2}"}`, `a\n  b ${k2} c ${k1}`]) {
        const out = redact(text);
        expect(out, prefix).not.toContain(k1);
        expect(out, prefix).not.toContain(k2);
        expect(out).toContain('[redacted ');
      }
    }
  });

  it('keeps the hint and fingerprint of a pattern-matched key for correlation', () => {
    const k = testKey();
    expect(redact(`bad key ${k}`)).toBe(`bad key [redacted sk-proj-...${k.slice(-4)} ${fingerprint(k)}]`);
  });

  it('Bearer and Basic credentials in echoed headers', () => {
    const tok = rand(32);
    expect(redact(`Authorization: Bearer ${tok}`)).toBe('Authorization: Bearer [redacted]');
    expect(redact(`authorization: bearer ${tok}.${tok}`)).toBe('authorization: bearer [redacted]');
    const basic = Buffer.from(`user:${rand(12)}`).toString('base64');
    expect(redact(`Authorization: Basic ${basic}`)).toBe('Authorization: Basic [redacted]');
    expect(redact(`{"headers":{"authorization":"Bearer ${tok}"}}`)).not.toContain(tok);
  });

  it('credentials embedded in URLs', () => {
    const pw = rand(16);
    expect(redact(`GET https://user:${pw}@example.com/path failed`)).toBe('GET https://[redacted]@example.com/path failed');
    expect(redact(`postgres://app:${pw}@db:5432/prod`)).toBe('postgres://[redacted]@db:5432/prod');
    expect(redact('https://example.com/no/credentials@here')).toBe('https://example.com/no/credentials@here');
  });

  it('other well-known token formats', () => {
    const tokens = ['HRKU-' + rand(20), 'ghp_' + rand(36), 'xoxb-' + rand(24), 'AKIA' + rand(16).toUpperCase().replace(/[^A-Z0-9]/g, 'Q')];
    for (const t of tokens) {
      const out = redact(`leaked: ${t} here`);
      expect(out, t.slice(0, 4)).not.toContain(t);
      expect(out).toMatch(/^leaked: \[redacted .*\] here$/);
    }
  });
});

describe('redact: where it is applied', () => {
  it('redactValue deep-redacts JSON-able values', () => {
    const k = testKey();
    const v = redactValue({ a: [1, { b: `x ${k}` }], c: null, d: 'fine' });
    expect(JSON.stringify(v)).not.toContain(k);
    expect(v.d).toBe('fine');
    expect(v.c).toBeNull();
    expect(v.a[0]).toBe(1);
    expect(redactValue(undefined)).toBeNull();
  });

  it('error messages are redacted at construction', () => {
    const k = testKey();
    expect(new TargetError(`provider said: invalid key ${k}`, { kind: 'auth' }).message).not.toContain(k);
    expect(new ConfigError(`bad value ${k}`).format()).not.toContain(k);
  });

  it('log lines (text and JSON) are redacted', () => {
    const k = testKey();
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l), level: 'debug' });
    log.info(`using ${k}`, { header: `Bearer ${rand(20)}` });
    const json = createLogger({ json: true, write: (l) => lines.push(l) });
    json.warn('x', { key: k });
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).not.toContain(k);
    expect(lines[0]).toContain('Bearer [redacted]');
    expect(JSON.parse(lines[1]!).level).toBe('warn');
  });
});
