// Loaded with --import by test/cli/startup-modules.test.ts: every module the process loads, printed at exit.
import { registerHooks } from 'node:module';

const seen = [];
registerHooks({
  load(url, context, nextLoad) {
    seen.push(url);
    return nextLoad(url, context);
  },
});
process.on('exit', () => process.stderr.write(`\nKEYROT_TEST_MODULES ${JSON.stringify(seen)}\n`));
