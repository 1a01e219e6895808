import { resolve } from 'node:path';
import { EXIT, ExitError } from '../../core/errors.ts';
import { selectEnvironment } from '../../inventory/load.ts';
import { writeFileAtomic } from '../../runtime/atomic.ts';
import { reportData, type ReportData } from '../../report/data.ts';
import { reportHtml } from '../../report/html.ts';
import { reportCsv, reportJson, reportMarkdown } from '../../report/text.ts';
import { commandContext, startReadingCommand, type CommonFlags } from '../context.ts';

const FORMATS = { html: reportHtml, md: reportMarkdown, csv: reportCsv, json: reportJson } satisfies Record<string, (d: ReportData) => string>;
type Format = keyof typeof FORMATS;

export interface ReportFlags extends CommonFlags {
  output?: string;
  format?: string;
}

/**
 * `keyrot report`: rotation history and key ages per environment, from keyrot's own state (no
 * provider contacted). `-o FILE` writes it (the format follows the file's extension unless
 * --format says), otherwise it goes to stdout (Markdown unless --format or --json says).
 * Exit 1 when the audit log fails verification: a report over tampered state is not one to file.
 */
export async function report(flags: ReportFlags): Promise<number> {
  const stop = startReadingCommand('report', flags);
  const format = chooseFormat(flags);
  const ctx = await commandContext({ ...flags, json: false });
  const inventory = flags.env ? { ...ctx.inventory, environments: new Map([[flags.env, selectEnvironment(ctx.inventory, flags.env)]]) } : ctx.inventory;
  const data = await reportData(inventory, ctx.state, ctx.clock.now());
  const text = FORMATS[format](data);
  if (flags.output) {
    const path = resolve(flags.output);
    // Ctrl-C waits for the file (no temp file left behind); from then on it says the report was written.
    await stop.uninterrupted(() => writeFileAtomic(path, text));
    stop.whereThingsStand = async () => `the report was written to ${path}; nothing else was changed`;
    process.stderr.write(`keyrot: wrote the ${format} report to ${path}${data.audit.intact ? '' : ' (the audit log FAILED verification: see keyrot history)'}\n`);
  } else {
    process.stdout.write(text);
  }
  return data.audit.intact ? EXIT.ok : EXIT.failed;
}

function chooseFormat(flags: ReportFlags): Format {
  const wanted = flags.format ?? (flags.json ? 'json' : flags.output ? /\.(html|md|csv|json)$/i.exec(flags.output)?.[1]?.toLowerCase() ?? 'html' : 'md');
  if (!(wanted in FORMATS)) throw new ExitError(EXIT.usage, `--format ${JSON.stringify(wanted)}: expected one of ${Object.keys(FORMATS).join(', ')}`);
  if (flags.json && flags.format && flags.format !== 'json') throw new ExitError(EXIT.usage, `--json and --format ${flags.format} disagree: give one of them`);
  return wanted as Format;
}

