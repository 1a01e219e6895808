import { z } from 'zod';
import { isTimeZone } from './time-zone.ts';
import { cronShapeProblem } from './cron.ts';
import { parseCredentialRef } from './credentials.ts';
import { parseDuration } from './duration.ts';
import { RequestTimeout } from '../targets/types.ts';
import { EndpointUrlField } from './endpoints.ts';

/** `env:VAR` or `file:PATH`: where a credential lives, never the credential. */
export const CredentialRefField = z
  .string()
  .transform((s, ctx) => {
    const ref = parseCredentialRef(s);
    if (!ref) {
      ctx.addIssue({
        code: 'custom',
        message:
          'a literal secret is not allowed here: expected a reference, env:VAR (an environment variable) or file:PATH (a file holding the secret)',
      });
      return z.NEVER;
    }
    return ref;
  });

export const DurationField = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === null) {
    ctx.addIssue({ code: 'custom', message: 'expected a duration such as 0s, 90s, 15m, 2h or 1d' });
    return z.NEVER;
  }
  return ms;
});

/** Key sources: prompt | stdin | env:VAR | file:PATH | openai-admin. */
export const KEY_SOURCE_HELP = 'prompt, stdin, env:VAR, file:PATH or openai-admin';
export const KeySourceField = z.string().refine((s) => /^(prompt|stdin|openai-admin|env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/.test(s), {
  message: `expected a key source: ${KEY_SOURCE_HELP}`,
});

export const KeyConfig = z
  .object({
    name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'expected a variable name such as OPENAI_API_KEY').default('OPENAI_API_KEY'),
    kind: z.enum(['openai', 'generic']).default('openai'),
    source: KeySourceField.default('prompt'),
    verify: z.boolean().default(true),
    /** The live check's API (default OPENAI_BASE_URL, else https://api.openai.com/v1). */
    endpoint: EndpointUrlField.optional(),
    admin: z
      .object({
        project: z.string().min(1),
        token: CredentialRefField,
        /** The Admin API: https://api.openai.com/v1 unless set here; never key.endpoint or OPENAI_BASE_URL. */
        endpoint: EndpointUrlField.optional(),
        expires: DurationField.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type KeyConfig = z.infer<typeof KeyConfig>;

export const ScheduleConfig = z
  .object({
    cron: z.string().superRefine((expr, ctx) => {
      // The shape and ranges only: node-cron loads where the schedule is used (inventory/cron.ts).
      const why = cronShapeProblem(expr);
      if (why) ctx.addIssue({ code: 'custom', message: `expected a cron expression such as "0 9 1 * *" (monthly) (${why})` });
    }),
    timezone: z
      .string()
      .refine(isTimeZone, { message: 'expected an IANA time zone such as UTC or Europe/Paris' })
      .default('UTC'),
  })
  .strict();

export const RevokeConfig = z
  .object({
    mode: z.enum(['prompt', 'openai-admin']).default('prompt'),
    grace: DurationField.default(0),
    /**
     * openai-admin: revocation waits until the old key's last_used_at shows no use since every
     * target switched (plus `margin`), for at most `limit`; `poll` is the check interval.
     */
    disuse: z
      .object({
        margin: DurationField.default(600_000),
        limit: DurationField.default(3_600_000),
        poll: DurationField.default(60_000),
      })
      .strict()
      .default({ margin: 600_000, limit: 3_600_000, poll: 60_000 }),
  })
  .strict();

export const NotifyConfig = z.object({ webhook: CredentialRefField.optional() }).strict();

/** The watch's shortest interval: the Admin API's usage buckets are daily, polling faster shows nothing new. */
export const MIN_WATCH_INTERVAL_MS = 5 * 60_000;

/**
 * `watch:` the daemon's usage watch (keyrot schedule): every `interval`, the current key's requests
 * today against `factor` × its daily average over the `baselineDays` before (from `minRequests`
 * requests today), and any use of a key that should be idle (retired, awaiting revocation).
 */
export const WatchConfig = z
  .object({
    interval: DurationField.refine((ms) => ms >= MIN_WATCH_INTERVAL_MS, { message: 'expected an interval of at least 5m (usage is counted per day; polling faster shows nothing new)' }).default(3_600_000),
    factor: z.number().gt(1, 'expected a factor above 1, such as 3 (today above 3× the daily baseline alerts)').default(3),
    baselineDays: z.number().int('expected a whole number of days').min(1, 'expected 1 to 30 days').max(30, 'expected 1 to 30 days').default(7),
    minRequests: z.number().int('expected a whole number of requests').min(0, 'expected 0 or more requests').default(50),
    /** Where alerts go; default notify.webhook. */
    webhook: CredentialRefField.optional(),
  })
  .strict();
export type WatchConfig = z.infer<typeof WatchConfig>;

export const ENV_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** The inventory without the targets' type-specific fields (validated per type, see load.ts). */
export const InventoryConfig = z
  .object({
    version: z.literal(1, { message: 'expected version: 1' }),
    key: KeyConfig.default(KeyConfig.parse({})),
    schedule: ScheduleConfig.optional(),
    revoke: RevokeConfig.default(RevokeConfig.parse({})),
    notify: NotifyConfig.optional(),
    watch: WatchConfig.optional(),
    /**
     * Where the journal, audit log and locks live: `local` (the state directory) or `kubernetes`
     * (a Lease per environment as the lock, the journal and audit log in a ConfigMap: cluster mode).
     */
    state: z
      .union([
        z.enum(['local', 'kubernetes']),
        z
          .object({
            type: z.literal('kubernetes'),
            namespace: z.string().min(1).optional(),
            name: z.string().min(1).optional(),
            context: z.string().min(1).optional(),
            /** The Secret holding the state key (default `<name>-state-key`), created on first use. */
            key_secret: z.string().min(1).optional(),
          })
          .strict(),
      ])
      .default('local'),
    /**
     * The key that authenticates the journal and audit log (HMAC-SHA256), kept outside the state.
     * Default: generated on first use (local: ~/.config/keyrot/state.key; cluster: a Secret).
     */
    state_key: CredentialRefField.optional(),
    environments: z.record(
      z.string().regex(ENV_NAME_RE, 'environment names use letters, digits, ".", "_" and "-"'),
      z
        .object({
          targets: z.array(z.looseObject({ type: z.string() })).min(1, 'an environment needs at least one target'),
          /** Per-environment overrides of `key` (e.g. a sandbox without the live check). */
          key: z
            .object({
              source: KeySourceField.optional(),
              verify: z.boolean().optional(),
              endpoint: EndpointUrlField.optional(),
            })
            .strict()
            .optional(),
          schedule: ScheduleConfig.optional(),
          /** This environment's usage watch (replaces the top-level one); `false`: not watched. */
          watch: z.union([WatchConfig, z.literal(false)]).optional(),
        })
        .strict(),
    ),
  })
  .strict();
export type InventoryConfig = z.infer<typeof InventoryConfig>;

/** Fields every target takes (README "targets.yaml reference"): added to each type's own schema. */
export const CommonTargetFields = {
  type: z.string(),
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.:/@-]*$/, 'expected a name of letters, digits and . _ : / @ -')
    .optional(),
  var: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'expected a variable name such as OPENAI_API_KEY').optional(),
  endpoint: z.string().min(1).optional(),
  token: CredentialRefField.optional(),
  requestTimeout: RequestTimeout.optional(),
};
