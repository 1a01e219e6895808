import { EXIT } from '../../core/errors.ts';
import { didYouMean } from '../../core/suggest.ts';
import { REGISTERED_IDS } from '../../targets/index.ts';
import { bashScript } from '../completion/bash.ts';
import { fishScript } from '../completion/fish.ts';
import { completionModel } from '../completion/model.ts';
import { zshScript } from '../completion/zsh.ts';
import { usage } from '../context.ts';
import type { CommandSpec } from '../main.ts';

const SHELLS = { bash: bashScript, zsh: zshScript, fish: fishScript };

/** `keyrot completion bash|zsh|fish`: the script on stdout, made from the command table. */
export async function completion(args: string[], commands: CommandSpec[]): Promise<number> {
  const shell = args[0] ?? '';
  if (!Object.hasOwn(SHELLS, shell)) usage(`no completion for shell "${shell}"${didYouMean(shell, Object.keys(SHELLS))}: expected bash, zsh or fish`);
  const script = SHELLS[shell as keyof typeof SHELLS](completionModel(commands, { targetTypes: [...REGISTERED_IDS] }));
  process.stdout.write(script);
  return EXIT.ok;
}
