import { createPrompt, isDownKey, isEnterKey, isSpaceKey, isUpKey, useKeypress, usePrefix, useState } from '@inquirer/core';
import { askPrompt } from '../prompt.ts';

export interface Choice {
  value: string;
  label: string;
  hint: string;
}

/**
 * A checklist on the terminal (stderr), built on @inquirer/core, the engine of keyrot's other
 * prompts: arrows move, space ticks, enter accepts. Ctrl-C leaves it like any keyrot prompt.
 */
const checklistPrompt = createPrompt<string[], { message: string; choices: Choice[] }>((config, done) => {
  const [cursor, setCursor] = useState(0);
  const [picked, setPicked] = useState<ReadonlySet<string>>(new Set());
  const [status, setStatus] = useState<'idle' | 'done'>('idle');
  const prefix = usePrefix({ status });
  const n = config.choices.length;
  useKeypress((key) => {
    if (status !== 'idle') return;
    if (isEnterKey(key)) {
      setStatus('done');
      done(config.choices.map((c) => c.value).filter((v) => picked.has(v)));
    } else if (isUpKey(key)) setCursor((cursor + n - 1) % n);
    else if (isDownKey(key)) setCursor((cursor + 1) % n);
    else if (isSpaceKey(key)) {
      const next = new Set(picked);
      const v = config.choices[cursor]!.value;
      if (!next.delete(v)) next.add(v);
      setPicked(next);
    }
  });
  if (status === 'done') return `${prefix} ${config.message} ${[...picked].join(', ') || '(none)'}`;
  const width = Math.max(...config.choices.map((c) => c.label.length));
  const lines = config.choices.map((c, i) => `${i === cursor ? '❯' : ' '} ${picked.has(c.value) ? '[x]' : '[ ]'} ${c.label.padEnd(width)}  ${c.hint}`);
  return `${prefix} ${config.message}\n${lines.join('\n')}`;
});

export function checklist(message: string, choices: Choice[]): Promise<string[]> {
  return askPrompt((signal) => checklistPrompt({ message, choices }, { output: process.stderr, signal }));
}
