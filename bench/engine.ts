import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../src/runtime/logger.ts';
import { systemClock } from '../src/runtime/clock.ts';
import { rotate } from '../src/usecases/rotate.ts';
import { silentReporter } from '../src/machine/progress.ts';
import { parseInventory } from '../src/inventory/load.ts';
import { Secret } from '../src/core/secret.ts';

const key = () => 'sk-proj-' + randomBytes(36).toString('base64url');

/** One in-process rotation of `n` dotenv targets; wall time and heap. */
export async function bench(n: number): Promise<{ ms: number; heapMb: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'keyrot-bench-engine-'));
  try {
    const old = key();
    const targets: string[] = [];
    for (let i = 0; i < n; i++) {
      await writeFile(join(dir, `app${i}.env`), `PORT=${3000 + i}\nOPENAI_API_KEY=${old}\n`, { mode: 0o600 });
      targets.push(`      - type: dotenv\n        path: app${i}.env`);
    }
    const yaml = `version: 1\nkey:\n  verify: false\n  source: stdin\nenvironments:\n  bench:\n    targets:\n${targets.join('\n')}\n`;
    const path = join(dir, 'targets.yaml');
    await writeFile(path, yaml);
    const inventory = await parseInventory(yaml, path);
    const env = inventory.environments.get('bench')!;
    const t0 = performance.now();
    const rep = await rotate(
      {
        inventory,
        env,
        processEnv: {},
        clock: systemClock,
        logger: silentLogger,
        state: join(dir, '.keyrot'),
        reporter: silentReporter,
        interactive: false,
        yes: true,
      },
      { mode: 'rotate', source: 'stdin', obtainKey: async () => new Secret(key()) },
    );
    const ms = performance.now() - t0;
    if (rep.outcome !== 'awaiting-revocation') throw new Error(`bench rotation ended ${rep.outcome}`);
    return { ms, heapMb: process.memoryUsage().heapUsed / 1048576 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
