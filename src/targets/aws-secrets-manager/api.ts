import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
  type DescribeSecretCommandOutput,
  type GetSecretValueCommandInput,
  type GetSecretValueCommandOutput,
  type ListSecretsCommandOutput,
  type UpdateSecretVersionStageCommandInput,
} from '@aws-sdk/client-secrets-manager';
import { fingerprint } from '../../core/secret.ts';
import { TargetError } from '../../core/errors.ts';
import type { CommonTargetConfig, TargetContext } from '../types.ts';
import { deadlinePassed } from '../../runtime/deadline.ts';
import { awsRateLimitKey, awsSetup, envRegion, type AwsClientConfig } from '../aws-client.ts';
import type { Lane } from '../../runtime/pacer.ts';
import { laneOf } from '../common.ts';
import { awsSecretsManager, type AwsSecretsManagerConfig } from './index.ts';
import { SECRETS_MANAGER, awsError, type SmAction } from './aws-errors.ts';

export const CURRENT = 'AWSCURRENT';
export const PENDING = 'AWSPENDING';
export const PREVIOUS = 'AWSPREVIOUS';

/** Which version holds each rotation label, from DescribeSecret's VersionIdsToStages. */
export interface Labels {
  current: string | undefined;
  pending: string | undefined;
  previous: string | undefined;
  stagesOf(versionId: string): string[];
}

export function labelsOf(d: DescribeSecretCommandOutput): Labels {
  const map = d.VersionIdsToStages ?? {};
  const find = (stage: string) => Object.keys(map).find((id) => map[id]?.includes(stage));
  return {
    current: find(CURRENT),
    pending: find(PENDING),
    previous: find(PREVIOUS),
    stagesOf: (id) => map[id] ?? [],
  };
}

/** `arn:aws:secretsmanager:<region>:...` → region. */
export function regionOfArn(secret: string): string | undefined {
  return /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):/.exec(secret)?.[1];
}

type CallOptions = { abortSignal: AbortSignal };

/**
 * One SDK client per region, endpoint, credentials and deadline, shared by the targets that use
 * them: a fleet of secrets in one account then shares one connection pool and one middleware
 * stack (250 clients of 250 secrets held ~0.4 MiB and a pool each). Counted: the last target to
 * close destroys it.
 */
const clients = new Map<string, { client: SecretsManagerClient; users: number }>();

function sharedClient(config: AwsClientConfig, timeoutMs: number): { key: string; client: SecretsManagerClient } {
  const { region, endpoint, credentials } = config;
  const who = credentials ? `${credentials.accessKeyId}:${fingerprint(`${credentials.secretAccessKey}:${credentials.sessionToken ?? ''}`)}` : 'default chain';
  const key = `${region ?? ''}|${endpoint ?? ''}|${who}|${timeoutMs}`;
  let entry = clients.get(key);
  if (!entry) clients.set(key, (entry = { client: new SecretsManagerClient(config), users: 0 }));
  entry.users++;
  return { key, client: entry.client };
}

/**
 * The four Secrets Manager calls keyrot makes on one secret, through the SDK: each under its
 * deadline, paced in the account's lane, failures in product words (aws-errors.ts).
 */
export class SecretsManagerApi {
  readonly secretId: string;
  readonly region: string | undefined;
  readonly endpoint: string | undefined;
  /** Quotas are per account and region: targets of one region, endpoint and credentials source share a lane. */
  readonly rateLimitKey: string;
  private readonly client: SecretsManagerClient;
  private readonly clientKey: string;
  private closed = false;
  private readonly timeoutMs: number;
  private readonly callOptions: (signal?: AbortSignal) => CallOptions;
  private readonly lane: Lane;
  private readonly target: string;

  constructor(config: AwsSecretsManagerConfig & CommonTargetConfig, ctx: TargetContext & { name: string }) {
    this.secretId = config.secret;
    this.target = ctx.name;
    // region: from targets.yaml wins, then the ARN's own region, then the environment; left
    // undefined, the SDK looks in the shared config profile.
    this.region = config.region ?? regionOfArn(config.secret) ?? envRegion(ctx.env);
    const aws = awsSetup(SECRETS_MANAGER, config, ctx.env, this.region);
    this.endpoint = aws.endpoint;
    this.timeoutMs = aws.timeoutMs;
    this.callOptions = aws.callOptions;
    ({ key: this.clientKey, client: this.client } = sharedClient(aws.clientConfig, this.timeoutMs));
    this.rateLimitKey = awsRateLimitKey(awsSecretsManager.id, aws, ctx.env);
    this.lane = laneOf(ctx, this.rateLimitKey, awsSecretsManager);
  }

  describe(op: string, signal?: AbortSignal): Promise<DescribeSecretCommandOutput> {
    return this.call('read', 'DescribeSecret', op, signal, (o) => this.client.send(new DescribeSecretCommand({ SecretId: this.secretId }), o));
  }

  /** GetSecretValue; null when the version/stage does not exist (the secret itself was found by DescribeSecret). */
  getValue(input: Omit<GetSecretValueCommandInput, 'SecretId'>, op: string, signal?: AbortSignal): Promise<GetSecretValueCommandOutput | null> {
    const get = (o: CallOptions) => this.client.send(new GetSecretValueCommand({ SecretId: this.secretId, ...input }), o);
    return this.call('read', 'GetSecretValue', op, signal, get, { missingIsNull: true });
  }

  /** One ListSecrets page (100 secrets) of the region, for `keyrot discover`: names and stages, no values. */
  listPage(nextToken: string | undefined, op: string, signal?: AbortSignal): Promise<ListSecretsCommandOutput> {
    return this.call('read', 'ListSecrets', op, signal, (o) => this.client.send(new ListSecretsCommand({ MaxResults: 100, ...(nextToken ? { NextToken: nextToken } : {}) }), o));
  }

  async moveStage(input: Omit<UpdateSecretVersionStageCommandInput, 'SecretId'>, op: string, signal?: AbortSignal): Promise<void> {
    await this.call('write', 'UpdateSecretVersionStage', op, signal, (o) => this.client.send(new UpdateSecretVersionStageCommand({ SecretId: this.secretId, ...input }), o));
  }

  /**
   * ClientRequestToken = this rotation's deterministic token: the same token with the same value
   * is a no-op at AWS (PutSecretValue is idempotent), with another value it fails with
   * ResourceExistsException (mapped to 'conflict'). VersionStages [AWSPENDING] stages the key
   * without making it current; AWSCURRENT stays where it is until verify promotes it.
   */
  async putPending(token: string, text: string, signal?: AbortSignal): Promise<void> {
    const input = { SecretId: this.secretId, ClientRequestToken: token, SecretString: text, VersionStages: [PENDING] };
    await this.call('write', 'PutSecretValue', 'write', signal, (o) => this.client.send(new PutSecretValueCommand(input), o));
  }

  /** An SDK failure in product words; `sent`: the options the call went out with (its deadline passing makes any failure a timeout). */
  fail(err: unknown, action: SmAction, op: string, sent?: CallOptions): TargetError {
    const timedOut = sent !== undefined && deadlinePassed(sent.abortSignal);
    const { secretId: secret, region, endpoint, timeoutMs } = this;
    return awsError(err, { target: this.target, op, action, secret, region, endpoint, timeoutMs, timedOut });
  }

  /** Releases this target's use of the shared client; the last user destroys it. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const entry = clients.get(this.clientKey);
    if (!entry || --entry.users > 0) return;
    clients.delete(this.clientKey);
    entry.client.destroy();
  }

  /**
   * One SDK call under its deadline, through the lane: a write waits for the published write rate;
   * a ThrottlingException tells the lane to slow the account down.
   */
  private call<T>(cls: 'read' | 'write', action: SmAction, op: string, signal: AbortSignal | undefined, send: (o: CallOptions) => Promise<T>): Promise<T>;
  private call<T>(cls: 'read' | 'write', action: SmAction, op: string, signal: AbortSignal | undefined, send: (o: CallOptions) => Promise<T>, o: { missingIsNull: true }): Promise<T | null>;
  private async call<T>(cls: 'read' | 'write', action: SmAction, op: string, signal: AbortSignal | undefined, send: (o: CallOptions) => Promise<T>, o?: { missingIsNull: true }): Promise<T | null> {
    return this.lane.request(
      async () => {
        const sent = this.callOptions(signal);
        try {
          return await send(sent);
        } catch (err) {
          if (o?.missingIsNull && (err as { name?: string }).name === 'ResourceNotFoundException') return null;
          throw this.fail(err, action, op, sent);
        }
      },
      { cls, signal },
    );
  }
}
