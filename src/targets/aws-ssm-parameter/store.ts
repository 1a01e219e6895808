import {
  DeleteParameterCommand,
  GetParameterCommand,
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  LabelParameterVersionCommand,
  PutParameterCommand,
  SSMClient,
  UnlabelParameterVersionCommand,
  type GetParametersByPathCommandOutput,
  type Parameter,
  type ParameterHistory,
  type PutParameterCommandInput,
} from '@aws-sdk/client-ssm';
import { TargetError } from '../../core/errors.ts';
import { deadlinePassed } from '../../runtime/deadline.ts';
import type { AwsSetup } from '../aws-client.ts';
import type { Lane } from '../../runtime/pacer.ts';
import { ssmError, type SsmAction } from './errors.ts';

/**
 * The Parameter Store calls keyrot makes, each under its own deadline, each failure translated
 * into product words. No value is kept here: callers compare and drop them.
 */
export interface ParameterStoreCalls {
  /** `name`, `name:VERSION` or `name:LABEL`; null when the parameter, version or label does not exist. */
  get(selector: string, op: string, o?: { decrypt?: boolean; signal?: AbortSignal }): Promise<Parameter | null>;
  /** Every version, oldest first (GetParameterHistory pages of 50); null when the parameter does not exist. */
  history(op: string, o?: { decrypt?: boolean; signal?: AbortSignal }): Promise<ParameterHistory[] | null>;
  put(input: Omit<PutParameterCommandInput, 'Name'>, op: string, signal?: AbortSignal): Promise<number>;
  /** Moves `label` to `version` (a label is on one version at most). */
  label(version: number, label: string, op: string, signal?: AbortSignal): Promise<void>;
  unlabel(version: number, label: string, op: string, signal?: AbortSignal): Promise<void>;
  remove(op: string, signal?: AbortSignal): Promise<void>;
  close(): void;
}

/**
 * The published throughput class of an action: GetParameter, GetParameters and GetParametersByPath
 * share the account's `get` rate per region (the target README cites the quota); other actions
 * are paced by the lane's window and AWS's throttling alone.
 */
function classOf(action: SsmAction): string | undefined {
  return action === 'GetParameter' || action === 'GetParametersByPath' ? 'get' : undefined;
}

/** One SDK call in the account's lane (each call is one request: the SDK makes one attempt), under its deadline, its failure in product words. */
function sendOne<T>(aws: AwsSetup, lane: Lane, c: { action: SsmAction; op: string; target: string; parameter: string }, signal: AbortSignal | undefined, run: (o: { abortSignal: AbortSignal }) => Promise<T>): Promise<T> {
  return lane.request(
    async () => {
      const sent = aws.callOptions(signal);
      try {
        return await run(sent);
      } catch (err) {
        const timedOut = deadlinePassed(sent.abortSignal);
        throw ssmError(err, { ...c, region: aws.region, endpoint: aws.endpoint, timeoutMs: aws.timeoutMs, timedOut });
      }
    },
    { cls: classOf(c.action), signal },
  );
}

export function parameterStoreCalls(name: string, aws: AwsSetup, target: string, lane: Lane): ParameterStoreCalls {
  const client = new SSMClient(aws.clientConfig);

  function send<T>(action: SsmAction, op: string, signal: AbortSignal | undefined, run: (o: { abortSignal: AbortSignal }) => Promise<T>): Promise<T> {
    return sendOne(aws, lane, { action, op, target, parameter: name }, signal, run);
  }

  const absent = (err: unknown) => {
    const n = (err as { cause?: { name?: string } }).cause?.name;
    if (n === 'ParameterNotFound' || n === 'ParameterVersionNotFound') return null;
    throw err;
  };

  return {
    async get(selector, op, o = {}) {
      const out = await send('GetParameter', op, o.signal, (s) => client.send(new GetParameterCommand({ Name: selector, WithDecryption: o.decrypt ?? true }), s)).catch(absent);
      return out?.Parameter ?? null;
    },
    async history(op, o = {}) {
      const all: ParameterHistory[] = [];
      let next: string | undefined;
      do {
        const page = await send('GetParameterHistory', op, o.signal, (s) =>
          client.send(new GetParameterHistoryCommand({ Name: name, WithDecryption: o.decrypt ?? false, MaxResults: 50, NextToken: next }), s),
        ).catch(absent);
        if (!page) return null;
        all.push(...(page.Parameters ?? []));
        next = page.NextToken || undefined;
      } while (next);
      return all.sort((a, b) => (a.Version ?? 0) - (b.Version ?? 0));
    },
    async put(input, op, signal) {
      const out = await send('PutParameter', op, signal, (s) => client.send(new PutParameterCommand({ Name: name, ...input }), s));
      return out.Version ?? 0;
    },
    async label(version, label, op, signal) {
      const out = await send('LabelParameterVersion', op, signal, (s) =>
        client.send(new LabelParameterVersionCommand({ Name: name, ParameterVersion: version, Labels: [label] }), s),
      );
      // An invalid label is not an error: AWS lists it in InvalidLabels and attaches nothing (LabelParameterVersion doc).
      if (out.InvalidLabels?.length) {
        throw new TargetError(`Parameter Store did not accept the label ${label} for ${name}: fix label: in targets.yaml (letters, digits, . - _; not starting with a digit, aws or ssm)`, {
          target,
          op,
          kind: 'invalid',
          retryable: false,
        });
      }
    },
    async unlabel(version, label, op, signal) {
      await send('UnlabelParameterVersion', op, signal, (s) => client.send(new UnlabelParameterVersionCommand({ Name: name, ParameterVersion: version, Labels: [label] }), s));
    },
    async remove(op, signal) {
      await send('DeleteParameter', op, signal, (s) => client.send(new DeleteParameterCommand({ Name: name }), s));
    },
    close: () => client.destroy(),
  };
}

/** One page of GetParametersByPath under `path` (recursive, decrypted), for discovery. */
export function parametersByPath(
  client: SSMClient,
  aws: AwsSetup,
  lane: Lane,
  path: string,
  next: string | undefined,
  signal?: AbortSignal,
): Promise<GetParametersByPathCommandOutput> {
  return sendOne(aws, lane, { action: 'GetParametersByPath', op: 'discover', target: 'discover', parameter: path }, signal, (sent) =>
    client.send(new GetParametersByPathCommand({ Path: path, Recursive: true, WithDecryption: true, MaxResults: 10, NextToken: next }), sent),
  );
}
