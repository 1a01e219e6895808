import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fingerprint, hint } from '../../src/core/secret.ts';
import { isIgnored, parseGitignore } from '../../src/scan/ignore.ts';
import { imageTexts, type HistoryEntry, type ImageInspect } from '../../src/scan/image.ts';
import { knownKeysFromEvents } from '../../src/scan/known.ts';
import { findCandidates, keyFormat, positions } from '../../src/scan/patterns.ts';
import { type JournalEvent } from '../../src/state/journal.ts';
import { testKey } from '../helpers/keys.ts';
import { legacyKey } from './fixtures.ts';

const none = () => false;

describe('key formats (docs/openai.md)', () => {
  it('classifies project, service-account, admin and legacy keys', () => {
    expect(keyFormat(testKey('sk-proj-'))).toBe('project');
    expect(keyFormat(testKey('sk-svcacct-'))).toBe('service-account');
    expect(keyFormat(testKey('sk-admin-'))).toBe('admin');
    expect(keyFormat(legacyKey())).toBe('legacy');
    // The `sk-<org>-…` legacy variant: one long random run.
    expect(keyFormat('sk-None-' + legacyKey().slice(3))).toBe('legacy');
  });

  it('does not take words, slugs or short tokens for keys', () => {
    const text = [
      'pip install scikit-learn  # sk-learn',
      // Built by concatenation so the repository's own leak check does not see key-like literals.
      'import sklearn; s' + 'k-learn-preprocessing-standard-scaler-tutorial-for-beginners',
      '.risk-assessment-panel { color: red } ta' + 'sk-' + 'runner-configuration-for-production-builds',
      'de' + 'sk-' + '1234567890'.repeat(5),
      `class="sk-button sk-button--primary sk-${'x'.repeat(40)}"`,
      'sk-proj-short and sk-admin-tooshort',
      'sk-' + 'a'.repeat(60),
    ].join('\n');
    expect(findCandidates(text, none, { assignments: false })).toEqual([]);
  });

  it('requires a boundary before sk-', () => {
    const k = testKey();
    expect(findCandidates(`task${k}`, none, { assignments: false })).toEqual([]);
    expect(findCandidates(`x-${k}`, none, { assignments: false })).toEqual([]);
    const found = findCandidates(`OPENAI_API_KEY="${k}"`, none, { assignments: false });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ token: k, format: 'project', fingerprint: fingerprint(k), index: 16 });
  });

  it('finds an assignment value by fingerprint even when it matches no format', () => {
    const generic = randomBytes(24).toString('hex');
    const fp = fingerprint(generic);
    const isKnown = (f: string) => f === fp;
    for (const text of [`OPENAI_API_KEY=${generic}`, `  "api_key": "${generic}",`, `export MY_TOKEN='${generic}'`, `apiKey: ${generic}`]) {
      const c = findCandidates(text, isKnown, { assignments: true });
      expect(c, text).toHaveLength(1);
      expect(c[0]!.token).toBe(generic);
    }
    // Unknown values are not reported, and assignments are not looked at when nothing is known.
    expect(findCandidates(`OPENAI_API_KEY=${randomBytes(24).toString('hex')}`, isKnown, { assignments: true })).toEqual([]);
    expect(findCandidates(`OPENAI_API_KEY=${generic}`, isKnown, { assignments: false })).toEqual([]);
  });

  it('positions are 1-based line and column', () => {
    const text = 'a\nbb\n\nxyz';
    expect(positions(text, [0, 2, 3, 6, 8])).toEqual([
      { line: 1, column: 1 },
      { line: 2, column: 1 },
      { line: 2, column: 2 },
      { line: 4, column: 1 },
      { line: 4, column: 3 },
    ]);
  });
});

describe('.gitignore matcher', () => {
  const levels = [
    { base: '', rules: parseGitignore('# comment\n*.log\n/build/\nsecret*.txt\n!secret-ok.txt\ndocs/**/*.md\n**/tmp\n\\#hash\n') },
    { base: 'sub', rules: parseGitignore('local.env\n/only-here\n') },
  ];
  it.each([
    ['a.log', false, true],
    ['deep/x/a.log', false, true],
    ['build', true, true],
    ['build', false, false],
    ['x/build', true, false],
    ['secret1.txt', false, true],
    ['secret-ok.txt', false, false],
    ['docs/a.md', false, true],
    ['docs/x/y/a.md', false, true],
    ['other/a.md', false, false],
    ['a/b/tmp', true, true],
    ['#hash', false, true],
    ['sub/local.env', false, true],
    ['local.env', false, false],
    ['sub/only-here', false, true],
    ['sub/x/only-here', false, false],
    ['src/app.ts', false, false],
  ])('%s (dir %s) ignored: %s', (path, isDir, ignored) => {
    expect(isIgnored(levels, path, isDir)).toBe(ignored);
  });
});

describe('image history and config (Engine API shapes)', () => {
  it('yields CreatedBy of each layer and Config.Env, numbered as docker history shows them', () => {
    const k = testKey();
    // Recorded shape of GET /images/{name}/history (Engine 20.10, classic builder), newest first.
    const history: HistoryEntry[] = [
      { Comment: '', Created: 1795671104, CreatedBy: '/bin/sh -c #(nop)  LABEL a=b', Id: 'sha256:cf9e', Size: 0, Tags: ['app:1'] },
      { Comment: '', Created: 1795671104, CreatedBy: `/bin/sh -c #(nop)  ENV OPENAI_API_KEY=${k}`, Id: 'sha256:93e9', Size: 0, Tags: null },
    ];
    const inspect: ImageInspect = {
      Id: 'sha256:cf9e',
      Config: { Env: ['PATH=/usr/bin', `OPENAI_API_KEY=${k}`], Cmd: null, Entrypoint: null, Labels: { a: 'b' } },
      ContainerConfig: { Env: ['PATH=/usr/bin', `OPENAI_API_KEY=${k}`] },
    };
    const texts = imageTexts(history, inspect);
    const hits = texts.filter((t) => findCandidates(t.text, none, { assignments: false }).length > 0);
    expect(hits.map((t) => t.where)).toEqual(['layer 2', 'config Env[1]']);
    expect(hits[0]).toMatchObject({ layer: 2, field: 'CreatedBy' });
  });
});

describe('known keys from the journals', () => {
  const ev = (e: Partial<JournalEvent> & Pick<JournalEvent, 'rotation' | 'step' | 'outcome'>): JournalEvent => ({
    v: 1,
    env: 'production',
    at: '2026-01-01T00:00:00.000Z',
    ...e,
  });
  it('old keys of rotations that went through are retired; a rolled-back rotation keeps its old key current', () => {
    const [a, b, c, d] = [testKey(), testKey(), testKey(), testKey()].map((k) => ({ fp: fingerprint(k), hint: hint(k) }));
    const known = knownKeysFromEvents([
      ev({ rotation: 'rot_1', step: 'start', outcome: 'ok', oldFingerprint: a!.fp, oldHint: a!.hint }),
      ev({ rotation: 'rot_1', step: 'key', outcome: 'ok', fingerprint: b!.fp, hint: b!.hint }),
      ev({ rotation: 'rot_1', step: 'end', outcome: 'completed' }),
      ev({ rotation: 'rot_2', step: 'start', outcome: 'ok', oldFingerprint: b!.fp }),
      ev({ rotation: 'rot_2', step: 'key', outcome: 'ok', fingerprint: c!.fp }),
      ev({ rotation: 'rot_2', step: 'end', outcome: 'rolled-back' }),
      ev({ rotation: 'rot_3', env: 'staging', step: 'start', outcome: 'ok', oldFingerprint: d!.fp }),
    ]);
    expect(known.get(a!.fp)).toMatchObject({ status: 'retired', rotation: 'rot_1', env: 'production' });
    expect(known.get(b!.fp)).toMatchObject({ status: 'current', env: 'production' });
    expect(known.has(c!.fp)).toBe(false);
    // A rotation under way is retiring its old key.
    expect(known.get(d!.fp)).toMatchObject({ status: 'retired', rotation: 'rot_3', env: 'staging' });
  });
});
