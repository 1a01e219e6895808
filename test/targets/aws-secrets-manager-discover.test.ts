import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AwsSecretsManagerEmulator } from '../../emulators/aws-secrets-manager/emulator.ts';
import { awsSecretsManager } from '../../src/targets/aws-secrets-manager/index.ts';
import { MAX_OTHER_READS } from '../../src/targets/secret-values.ts';
import type { DiscoverContext, DiscoveredPlace } from '../../src/targets/types.ts';
import { testKey } from '../helpers/keys.ts';
import { testContext } from '../helpers/context.ts';
import { expectEntryHolds, inventoryTakes } from '../helpers/discover.ts';

let east: AwsSecretsManagerEmulator;
let west: AwsSecretsManagerEmulator;

beforeEach(async () => {
  east = new AwsSecretsManagerEmulator();
  west = new AwsSecretsManagerEmulator({ region: 'eu-west-1' });
  await Promise.all([east.start(), west.start()]);
  // One identity in both regions, as with real AWS.
  west.addCredentials(east.credentials);
});
afterEach(async () => {
  await Promise.all([east.stop(), west.stop()]);
});

function ctxFor(env: NodeJS.ProcessEnv = {}): DiscoverContext {
  return {
    ...testContext({ env: { AWS_ACCESS_KEY_ID: east.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: east.credentials.secretAccessKey, ...env } }),
    varNames: ['OPENAI_API_KEY'],
    configs: [
      { region: 'us-east-1', endpoint: east.url, secret: 'prod/openai-api-key' },
      { region: 'eu-west-1', endpoint: west.url, secret: 'eu/openai-api-key' },
    ],
  };
}

const valueOf = (p: DiscoveredPlace | undefined) => (p?.holds.kind === 'value' ? p.holds.value.reveal() : p?.holds.kind);

describe('aws-secrets-manager: discover', () => {
  it('lists every secret of each region across pages, reads those named like the variable and JSON fields, with ready targets.yaml entries', async () => {
    const key = testKey();
    const other = testKey();
    east.seed('app/config', { DB_URL: 'postgres://db', OPENAI_API_KEY: key });
    east.seed('prod/openai-api-key', key);
    east.seed('dev/OPENAI_API_KEY', other);
    east.createEmpty('empty/openai-api-key');
    for (let i = 0; i < 105; i++) east.seed(`noise/s${i}`, `v${i}`);
    east.seed('late/openai_api_key', key); // listed on the second page
    west.seed('eu/openai-api-key', key);

    const found = await awsSecretsManager.discover!(ctxFor());

    expect(found.count).toBe(110 + 1);
    const byLocation = new Map(found.places.map((p) => [p.location, p]));
    expect([...byLocation.keys()].sort()).toEqual([
      'app/config (us-east-1)[OPENAI_API_KEY]',
      'dev/OPENAI_API_KEY (us-east-1)',
      'eu/openai-api-key (eu-west-1)',
      'late/openai_api_key (us-east-1)',
      'prod/openai-api-key (us-east-1)',
    ]);
    expect(valueOf(byLocation.get('prod/openai-api-key (us-east-1)'))).toBe(key);
    expect(valueOf(byLocation.get('late/openai_api_key (us-east-1)'))).toBe(key);
    expect(valueOf(byLocation.get('app/config (us-east-1)[OPENAI_API_KEY]'))).toBe(key);
    expect(valueOf(byLocation.get('dev/OPENAI_API_KEY (us-east-1)'))).toBe(other);
    expect(valueOf(byLocation.get('eu/openai-api-key (eu-west-1)'))).toBe(key);
    expect(byLocation.get('app/config (us-east-1)[OPENAI_API_KEY]')!.target).toEqual({ type: 'aws-secrets-manager', secret: 'app/config', region: 'us-east-1', field: 'OPENAI_API_KEY', endpoint: east.url });
    for (const p of found.places) {
      const { type, endpoint, ...fields } = p.target;
      expect(type).toBe('aws-secrets-manager');
      expect(awsSecretsManager.schema.safeParse(fields).success).toBe(true);
      expect(typeof endpoint).toBe('string');
    }
    expect(await Promise.all(found.places.map((p) => inventoryTakes(p.target)))).not.toContain(false);
    // Requests: 2 ListSecrets pages in us-east-1, 1 in eu-west-1; GetSecretValue for the 3 named
    // secrets with a value and MAX_OTHER_READS of the 106 others (app/config among them), the empty
    // secret skipped from its listing; 1 in eu-west-1.
    expect(east.calls('ListSecrets')).toHaveLength(2);
    expect(east.calls('ListSecrets')[1]!.input.NextToken).toEqual(expect.any(String));
    expect(east.calls('GetSecretValue')).toHaveLength(3 + MAX_OTHER_READS);
    expect(west.calls('ListSecrets')).toHaveLength(1);
    expect(west.calls('GetSecretValue')).toHaveLength(1);
    expect(found.scope).toContain('110 secrets in us-east-1, 103 read (6 not named like the variable left unread');
    expect(found.scope).toContain('1 secret in eu-west-1, 1 read');
  });

  it('a found entry makes a ready target that reads the same key', async () => {
    const key = testKey();
    east.seed('app/config', { OPENAI_API_KEY: key, OTHER: 'x' });
    const ctx = ctxFor();
    const found = await awsSecretsManager.discover!(ctx);
    await expectEntryHolds(awsSecretsManager, found.places[0]!, ctx, key, { endpoint: east.url });
  });

  it('a secret named like the variable that the identity may not read is reported unreadable; other denied secrets are passed over', async () => {
    east.seed('prod/openai-api-key', testKey());
    east.seed('team/config', { OPENAI_API_KEY: testKey() });
    east.denyAction('GetSecretValue', 'prod/openai-api-key');
    east.denyAction('GetSecretValue', 'team/config');
    const found = await awsSecretsManager.discover!(ctxFor());
    expect(found.places.map((p) => [p.location, p.holds.kind])).toEqual([['prod/openai-api-key (us-east-1)', 'unreadable']]);
    const holds = found.places[0]!.holds;
    expect(holds.kind === 'unreadable' && holds.reason).toMatch(/AWS denied secretsmanager:GetSecretValue on arn:aws:secretsmanager:us-east-1:\d+:secret:prod\/openai-api-key/);
  });

  it('a throttled ListSecrets is retried (paced), and an entry leaves region out when targets.yaml does', async () => {
    east.seed('prod/openai-api-key', testKey());
    east.throttleNext(1, 'ListSecrets');
    const ctx = { ...ctxFor({ AWS_REGION: 'us-east-1' }), configs: [{ endpoint: east.url, secret: 'prod/openai-api-key' }] };
    const found = await awsSecretsManager.discover!(ctx);
    expect(east.calls('ListSecrets').map((c) => c.status)).toEqual([400, 200]);
    // The inventory's target relies on AWS_REGION: the entry does too, so it compares equal to it.
    expect(found.places.map((p) => p.target)).toEqual([{ type: 'aws-secrets-manager', secret: 'prod/openai-api-key', endpoint: east.url }]);
    expect(found.scope).toBe('1 secret in us-east-1, 1 read');
  });

  it('refused credentials or a denied ListSecrets are auth errors that say what to fix', async () => {
    east.denyAction('ListSecrets');
    await expect(awsSecretsManager.discover!(ctxFor())).rejects.toMatchObject({
      kind: 'auth',
      message: expect.stringContaining('AWS denied secretsmanager:ListSecrets on all secrets (us-east-1): grant it'),
    });
    east.allowAction('ListSecrets');
    east.revokeCredentials();
    await expect(awsSecretsManager.discover!(ctxFor())).rejects.toMatchObject({ kind: 'auth', message: expect.stringContaining('AWS rejected the credentials') });
  });
});

describe('aws-secrets-manager: discover of the inventory\'s own secrets', () => {
  it('reads a secret the inventory lists even when its name is not the variable\'s, by name or ARN', async () => {
    const key = testKey();
    east.seed('walk/openai', key);
    east.seed('by-arn/openai', key);
    east.seed('not-listed/openai', key); // neither named like the variable nor in the inventory: passed over
    const ctx = ctxFor();
    ctx.configs = [
      { region: 'us-east-1', endpoint: east.url, secret: 'walk/openai' },
      { region: 'us-east-1', endpoint: east.url, secret: east.arnOf('by-arn/openai') },
    ];
    const found = await awsSecretsManager.discover!(ctx);
    const byLocation = new Map(found.places.map((p) => [p.location, p]));
    expect([...byLocation.keys()].sort()).toEqual(['by-arn/openai (us-east-1)', 'walk/openai (us-east-1)']);
    expect(valueOf(byLocation.get('walk/openai (us-east-1)'))).toBe(key);
    expect(byLocation.get('walk/openai (us-east-1)')!.target).toEqual({ type: 'aws-secrets-manager', secret: 'walk/openai', region: 'us-east-1', endpoint: east.url });
  });
});
