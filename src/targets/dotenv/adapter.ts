import { unlink } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { Secret } from '../../core/secret.ts';
import { localPreflight, readTextOrNull, removeLocalStrays, writeLocalFile } from '../local.ts';
import { verifyByReadBack } from '../common.ts';
import type { ReadResult, Target, TargetContext } from '../types.ts';
import type { DotenvConfig, DotenvReceipt } from './index.ts';
import { getVar, parseDotenv, removeVar, setVar } from './parse.ts';

export function createDotenvTarget(config: DotenvConfig, ctx: TargetContext & { name: string }): Target<DotenvReceipt> {
  const path = isAbsolute(config.path) ? config.path : resolve(ctx.baseDir, config.path);
  const varName = ctx.varName;
  const where = `${config.path} ${varName}`;

  const readRaw = () => readTextOrNull(path, ctx.name);

  async function read(): Promise<ReadResult> {
    const raw = await readRaw();
    const v = raw === null ? null : getVar(raw, varName);
    return v ? { kind: 'value', value: new Secret(v) } : { kind: 'absent' };
  }

  const save = (text: string) => writeLocalFile(path, text, ctx.name);

  return {
    id: 'dotenv',
    name: ctx.name,
    location: config.path,
    lockKey: `file:${path}`,
    removeStrays: () => removeLocalStrays(path),
    async preflight() {
      const res = await localPreflight(path, read, 'the .env file');
      const raw = res.status === 'ready' ? await readRaw() : null;
      if (raw !== null) {
        const values = new Set(parseDotenv(raw).filter((a) => a.name === varName).map((a) => a.value));
        if (values.size > 1) {
          (res.notes ??= []).push(`${varName} is assigned ${values.size} different values in the file; every assignment will be updated`);
        }
        if (res.current.kind === 'absent') (res.notes ??= []).push(`${varName} will be added to the file`);
      }
      return res;
    },
    read,
    async write(value) {
      const raw = await readRaw();
      const text = raw ?? '';
      const before = getVar(text, varName);
      const next = setVar(text, varName, value.reveal());
      if (next !== text) await save(next);
      const receipt: DotenvReceipt = { createdFile: raw === null, addedVar: before === null };
      // What a restore to "no value" must give back exactly: an empty assignment, a missing final newline.
      if (before === '') receipt.emptyVar = true;
      if (before === null && raw && !raw.endsWith('\n')) receipt.addedEol = true;
      return receipt;
    },
    verify: (value) => verifyByReadBack(read, value, ctx.name, where),
    async restore(previous, _op, receipt) {
      const raw = await readRaw();
      if (raw === null) {
        if (previous) await save(setVar('', varName, previous.reveal()));
        return;
      }
      if (previous) {
        const next = setVar(raw, varName, previous.reveal());
        if (next !== raw) await save(next);
        return;
      }
      // The variable had an empty value: empty it again (the line and its comment stay).
      if (receipt?.emptyVar) {
        const next = setVar(raw, varName, '');
        if (next !== raw) await save(next);
        return;
      }
      // The variable did not exist before: take it out again (and the file, if keyrot created it).
      let next = removeVar(raw, varName);
      if (receipt?.addedEol && next !== raw) next = next.replace(/\r?\n$/, '');
      if (receipt?.createdFile && next.trim() === '') {
        await unlink(path).catch(() => {});
      } else if (next !== raw) {
        await save(next);
      }
    },
  };
}
