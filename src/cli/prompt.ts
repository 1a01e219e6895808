import { PromptCancelled } from '../core/errors.ts';
import { currentInterruption } from './interrupt.ts';
import { promptWhileHeld } from './keystrokes.ts';

/**
 * The terminal prompts (stderr, so stdout stays the result). Leaving one, by Ctrl-C, by Ctrl-D on
 * an empty answer, or by a stop signal while it waits, is `PromptCancelled` and a stop request
 * (cli/interrupt.ts): the command ends with exit 130 and says where things stand.
 */
export async function promptHidden(message: string): Promise<string> {
  const { default: password } = await import('@inquirer/password');
  // mask: false echoes nothing. @inquirer/password 4.x (engines >=18, so it installs on Node 22.12
  // without warnings) has no ctrl+t reveal; 5.x added one (`toggleMask`), which must stay off if
  // it is ever upgraded (invariant 3: a key is never on stderr).
  return askPrompt((signal) => password({ message, mask: false }, { output: process.stderr, signal }));
}

export async function confirmYesNo(message: string, def = false): Promise<boolean> {
  const { default: confirm } = await import('@inquirer/confirm');
  return askPrompt((signal) => confirm({ message, default: def }, { output: process.stderr, signal }));
}

/** A line typed in clear (a typed confirmation such as REVOKE), through node:readline. */
export async function typedAnswer(question: string): Promise<string> {
  const { createInterface } = await import('node:readline');
  return askPrompt(
    (signal) =>
      new Promise<string>((resolve, reject) => {
        const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: Boolean(process.stdin.isTTY) });
        const cancel = (how: string) => {
          reject(new PromptCancelled(how));
          rl.close();
        };
        rl.on('SIGINT', () => cancel('Ctrl-C'));
        rl.on('close', () => cancel('end of input')); // no-op once answered
        signal.addEventListener('abort', () => cancel('stop requested'), { once: true });
        rl.question(question, (answer) => {
          resolve(answer);
          rl.close();
        });
      }),
  );
}

/**
 * Runs a prompt so that every way of leaving it is a `PromptCancelled`. @inquirer's prompts reject
 * with ExitPromptError on Ctrl-C but never settle when their readline closes on Ctrl-D or an end
 * of input (readline closes, which pauses stdin): that is turned into an abort of the prompt.
 */
export async function askPrompt<T>(prompt: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const stop = currentInterruption();
  if (stop?.requested) throw new PromptCancelled('stop requested');
  const ended = new AbortController();
  // Deferred: a prompt that was answered also closes its readline; by then it has settled.
  const onPause = () => setImmediate(() => ended.abort(new PromptCancelled('end of input')));
  if (stop) stop.prompting = true;
  try {
    return await promptWhileHeld(() => {
      process.stdin.on('pause', onPause);
      return prompt(stop ? AbortSignal.any([stop.signal, ended.signal]) : ended.signal);
    });
  } catch (err) {
    const cancelled = asCancelled(err, ended.signal);
    if (!cancelled) throw err;
    stop?.request('prompt');
    throw cancelled;
  } finally {
    process.stdin.off('pause', onPause);
    if (stop) stop.prompting = false;
  }
}

function asCancelled(err: unknown, ended: AbortSignal): PromptCancelled | undefined {
  if (err instanceof PromptCancelled) return err;
  const name = (err as Error | undefined)?.name;
  if (name === 'ExitPromptError') return new PromptCancelled('Ctrl-C');
  if (name === 'AbortPromptError') return new PromptCancelled(ended.aborted ? 'end of input' : 'stop requested');
  return undefined;
}
