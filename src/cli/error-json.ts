import { printableJson } from '../core/printable.ts';

/**
 * The JSON document a command run with --json writes on stdout when it fails or is interrupted:
 * scripts reading stdout get one in every case, with the exit code and the message stderr got.
 */
export function errorJson(exitCode: number, message: string): string {
  return printableJson(JSON.stringify({ error: { exitCode, message: message.replace(/^keyrot: /, '') } }, null, 2)) + '\n';
}
