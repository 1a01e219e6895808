import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GcpSecretManagerEmulator } from '../../emulators/gcp-secret-manager/emulator.ts';
import { gcpSecretManager } from '../../src/targets/gcp-secret-manager/index.ts';
import { MAX_OTHER_READS } from '../../src/targets/secret-values.ts';
import type { DiscoverContext, DiscoveredPlace } from '../../src/targets/types.ts';
import { testKey } from '../helpers/keys.ts';
import { testContext } from '../helpers/context.ts';
import { fakeClock } from '../../src/runtime/clock.ts';
import { expectEntryHolds, inventoryTakes } from '../helpers/discover.ts';

let emu: GcpSecretManagerEmulator;
const TOKEN = { kind: 'env' as const, name: 'GCP_ACCESS_TOKEN', raw: 'env:GCP_ACCESS_TOKEN' };

beforeEach(async () => {
  emu = new GcpSecretManagerEmulator();
  await emu.start();
});
afterEach(async () => {
  await emu.stop();
});

function ctxFor(token = emu.token, projects = ['acme-prod', 'acme-dev']): DiscoverContext {
  return {
    // A fake clock: the project's read quota (10 a second) is waited out in virtual time.
    ...testContext({ env: { GCP_ACCESS_TOKEN: token } }),
    clock: fakeClock(Date.now()),
    varNames: ['OPENAI_API_KEY'],
    configs: projects.map((project) => ({ project, secret: 'openai-api-key', endpoint: emu.endpoint, token: TOKEN })),
  };
}

const valueOf = (p: DiscoveredPlace | undefined) => (p?.holds.kind === 'value' ? p.holds.value.reveal() : p?.holds.kind);
const calls = (re: RegExp) => emu.server.requests.filter((r) => r.method === 'GET' && re.test(r.path));

describe('gcp-secret-manager: discover', () => {
  it('lists every secret of each project across pages, reads the latest version of those named like the variable and JSON fields', async () => {
    const key = testKey();
    emu.seed('acme-prod', 'app-config', JSON.stringify({ DB_URL: 'postgres://db', OPENAI_API_KEY: key }));
    emu.seed('acme-prod', 'openai-api-key', key);
    emu.createSecret('acme-prod', 'empty-openai-api-key');
    for (let i = 0; i < 105; i++) emu.seed('acme-prod', `noise-${i}`, `v${i}`);
    emu.seed('acme-prod', 'OPENAI_API_KEY', key); // on the second page
    emu.seed('acme-dev', 'openai-api-key', testKey());

    const found = await gcpSecretManager.discover!(ctxFor());

    expect(found.count).toBe(109 + 1);
    const byLocation = new Map(found.places.map((p) => [p.location, p]));
    expect([...byLocation.keys()].sort()).toEqual([
      'projects/acme-dev/secrets/openai-api-key',
      'projects/acme-prod/secrets/OPENAI_API_KEY',
      'projects/acme-prod/secrets/app-config[OPENAI_API_KEY]',
      'projects/acme-prod/secrets/openai-api-key',
    ]);
    expect(valueOf(byLocation.get('projects/acme-prod/secrets/openai-api-key'))).toBe(key);
    expect(valueOf(byLocation.get('projects/acme-prod/secrets/OPENAI_API_KEY'))).toBe(key);
    expect(valueOf(byLocation.get('projects/acme-prod/secrets/app-config[OPENAI_API_KEY]'))).toBe(key);
    expect(valueOf(byLocation.get('projects/acme-dev/secrets/openai-api-key'))).not.toBe(key);
    // A JSON field: the gcp-secret-manager target writes whole values, so it is found but not offered as an entry.
    expect(byLocation.get('projects/acme-prod/secrets/app-config[OPENAI_API_KEY]')!.notRotatable).toMatch(/writes whole values/);
    // Pasted anyway, the entry is refused by targets.yaml (`field:` is not a field of this type); the others load.
    expect(await inventoryTakes(byLocation.get('projects/acme-prod/secrets/app-config[OPENAI_API_KEY]')!.target)).toBe(false);
    expect(await Promise.all(found.places.filter((x) => !x.notRotatable).map((x) => inventoryTakes(x.target)))).not.toContain(false);
    expect(byLocation.get('projects/acme-prod/secrets/openai-api-key')!.notRotatable).toBeUndefined();
    expect(byLocation.get('projects/acme-prod/secrets/openai-api-key')!.target).toEqual({ type: 'gcp-secret-manager', project: 'acme-prod', secret: 'openai-api-key', endpoint: emu.endpoint, token: 'env:GCP_ACCESS_TOKEN' });
    for (const p of found.places.filter((x) => !x.notRotatable)) {
      const { type, endpoint: _e, token: _t, ...fields } = p.target;
      expect(type).toBe('gcp-secret-manager');
      expect(gcpSecretManager.schema.safeParse(fields).success).toBe(true);
    }
    // Requests: 2 list pages in acme-prod and 1 in acme-dev; accesses: the 2 named secrets of
    // acme-prod, MAX_OTHER_READS of its 107 others (the empty one answers NOT_FOUND), 1 in acme-dev.
    expect(calls(/^\/v1\/projects\/acme-prod\/secrets$/)).toHaveLength(2);
    expect(calls(/^\/v1\/projects\/acme-dev\/secrets$/)).toHaveLength(1);
    expect(calls(/^\/v1\/projects\/acme-prod\/secrets\/.+:access$/)).toHaveLength(2 + MAX_OTHER_READS);
    expect(calls(/^\/v1\/projects\/acme-dev\/secrets\/.+:access$/)).toHaveLength(1);
    expect(found.scope).toContain('109 secrets of project acme-prod, 102 read (7 not named like the variable left unread');
  });

  it('a found entry makes a ready target holding the same key', async () => {
    const key = testKey();
    emu.seed('acme-prod', 'openai-api-key', key);
    const ctx = ctxFor(emu.token, ['acme-prod']);
    const found = await gcpSecretManager.discover!(ctx);
    await expectEntryHolds(gcpSecretManager, found.places[0]!, ctx, key, { endpoint: emu.endpoint, token: TOKEN });
  });

  it('reads a secret the inventory lists even when its name is not the variable\'s', async () => {
    const key = testKey();
    emu.seed('acme-prod', 'prod-openai', key);
    emu.seed('acme-prod', 'other-openai', key); // neither named like the variable nor listed: passed over
    const ctx = { ...ctxFor(emu.token, ['acme-prod']), configs: [{ project: 'acme-prod', secret: 'prod-openai', endpoint: emu.endpoint, token: TOKEN }] };
    const found = await gcpSecretManager.discover!(ctx);
    expect(found.places.map((p) => p.location)).toEqual([expect.stringContaining('prod-openai')]);
    expect(valueOf(found.places[0])).toBe(key);
  });

  it('a secret named like the variable whose latest version is disabled is reported unreadable', async () => {
    emu.seed('acme-prod', 'openai-api-key', testKey());
    emu.setState('acme-prod', 'openai-api-key', '1', 'DISABLED');
    const found = await gcpSecretManager.discover!(ctxFor(emu.token, ['acme-prod']));
    expect(found.places.map((p) => [p.location, p.holds.kind])).toEqual([['projects/acme-prod/secrets/openai-api-key', 'unreadable']]);
  });

  it('refused credentials, a denied list and a missing project are auth errors that say what to do', async () => {
    await expect(gcpSecretManager.discover!(ctxFor('ya29.not-the-token'))).rejects.toMatchObject({ kind: 'auth', message: expect.stringContaining('Google Cloud rejected the credentials') });
    emu.denyPermission('secretmanager.secrets.list');
    await expect(gcpSecretManager.discover!(ctxFor())).rejects.toMatchObject({ kind: 'auth', message: expect.stringContaining('Google Cloud denied secretmanager.secrets.list on projects/acme-prod') });
    const none = { ...testContext({ env: {} }), varNames: ['OPENAI_API_KEY'], configs: [] };
    await expect(gcpSecretManager.discover!(none)).rejects.toMatchObject({ kind: 'auth', message: expect.stringContaining('set GOOGLE_CLOUD_PROJECT') });
  });
});
