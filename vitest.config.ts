import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Tests start loopback servers and subprocesses: a few files at a time on a 2-core machine.
    maxWorkers: 3,
  },
});
