import { createServer, type Server } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Secret } from '../../src/core/secret.ts';
import { parseInventory } from '../../src/inventory/load.ts';
import type { Clock } from '../../src/runtime/clock.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { discover } from '../../src/usecases/discover.ts';
import { inInventory } from '../../src/usecases/discover-inventory.ts';
import { testKey } from '../helpers/keys.ts';

/**
 * The discover use case's own rules: a provider that does not answer is reported as not searched
 * once its deadline passes (the rest of the report stands), and what "in the inventory" means.
 */
let dir: string;
let silent: Server;
let port: number;
let connections: { opened: number; closed: number };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyrot-discover-unit-'));
  // Accepts connections and never answers: a provider that hangs.
  connections = { opened: 0, closed: 0 };
  silent = createServer((socket) => {
    connections.opened++;
    socket.on('close', () => connections.closed++);
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  port = (silent.address() as { port: number }).port;
});
afterEach(async () => {
  silent.close();
  await rm(dir, { recursive: true, force: true });
});

const inventoryText = (targets: string) => `version: 1
key:
  name: OPENAI_API_KEY
  source: stdin
environments:
  prod:
    targets:
${targets}`;

describe('discover (use case)', () => {
  it('a provider still searching at its deadline is reported as not searched, and its search is aborted', async () => {
    const inv = await parseInventory(inventoryText(`      - type: render\n        service: srv-1\n        endpoint: http://127.0.0.1:${port}/v1\n`), join(dir, 'targets.yaml'));
    // The deadline passes once the render search is waiting on the silent provider.
    const clock: Clock = {
      now: () => Date.now(),
      sleep: (ms, signal) =>
        new Promise((resolve, reject) => {
          if (ms >= 60_000) {
            const t = setInterval(() => connections.opened > 0 && (clearInterval(t), resolve()), 10);
            return;
          }
          const t = setTimeout(resolve, ms);
          signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
        }),
    };
    const r = await discover({
      inventory: inv,
      env: inv.environments.get('prod')!,
      processEnv: { RENDER_API_KEY: 'rnd_test_token' },
      clock,
      logger: silentLogger,
      key: new Secret(testKey()),
      dirs: [],
      inventoryTypesOnly: true,
      providerDeadlineMs: 60_000,
    });
    expect(r.searched).toEqual([]);
    expect(r.skipped).toEqual([{ provider: 'render', reason: 'did not finish within 60 s: not searched' }]);
    // The hanging request was aborted (its connection closed), not left to its 30 s request timeout.
    await vi.waitFor(() => expect(connections.closed).toBeGreaterThanOrEqual(1), { timeout: 5_000 });
  });

  it('in the inventory: the same file whatever the type writing it, the same fields and variable otherwise', async () => {
    const inv = await parseInventory(
      inventoryText(`      - type: dotenv\n        path: ./app/.env\n      - type: render\n        service: srv-1\n        endpoint: http://127.0.0.1:1/v1\n      - type: render\n        service: srv-2\n        var: OPENAI_KEY\n`),
      join(dir, 'targets.yaml'),
    );
    const env = inv.environments.get('prod')!;
    expect(inInventory({ type: 'dotenv', path: 'app/.env' }, env, dir)).toBe(true);
    expect(inInventory({ type: 'dotenv', path: join(dir, 'app', '.env') }, env, dir)).toBe(true);
    // Compose reads the same .env: the dotenv target already rotates it.
    expect(inInventory({ type: 'docker-compose', env_file: 'app/.env', project: 'app', services: ['api'] }, env, dir)).toBe(true);
    expect(inInventory({ type: 'dotenv', path: 'app/.env', var: 'OTHER_KEY' }, env, dir)).toBe(false);
    expect(inInventory({ type: 'dotenv', path: 'side/.env' }, env, dir)).toBe(false);
    // Reached through another endpoint or token, srv-1 is still srv-1.
    expect(inInventory({ type: 'render', service: 'srv-1', endpoint: 'http://127.0.0.1:2/v1', token: 'env:OTHER' }, env, dir)).toBe(true);
    expect(inInventory({ type: 'render', service: 'srv-2' }, env, dir)).toBe(false);
    expect(inInventory({ type: 'render', service: 'srv-2', var: 'OPENAI_KEY' }, env, dir)).toBe(true);
    expect(inInventory({ type: 'render', service: 'srv-3' }, env, dir)).toBe(false);
  });
});
