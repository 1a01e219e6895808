import type { EmuRequest, EmuResponse } from '../server.ts';
import { AwsFailure, AwsJsonEmulator, awsJsonError, awsJsonOk, type AwsEmulatorOptions } from '../aws-json.ts';
import { parseAuthorization } from '../aws-secrets-manager/sigv4.ts';
import { ParameterStore, type SsmParameterType, type VersionView } from './store.ts';

/**
 * A loopback emulator of AWS Systems Manager Parameter Store's awsJson1_1 API, faithful where
 * keyrot depends on it: `POST /` with `X-Amz-Target: AmazonSSM.<Operation>`, SigV4-signed for the
 * service `ssm` (the SDK's serviceTarget and signing name, @aws-sdk/client-ssm dist-cjs). Versions,
 * labels, the 100-version limit, SecureString values encrypted under a KMS key (decrypted only
 * with `WithDecryption`), pagination, throttling, and AWS's error codes (the command docs of
 * @aws-sdk/client-ssm, and moto's tests for the exact messages). State lives in ./store.ts.
 */

export const SSM_OPERATIONS = [
  'GetParameter',
  'GetParameterHistory',
  'GetParametersByPath',
  'PutParameter',
  'LabelParameterVersion',
  'UnlabelParameterVersion',
  'DeleteParameter',
] as const;
export type SsmOperation = (typeof SSM_OPERATIONS)[number];

const NAMESPACE = 'com.amazonaws.ssm';

export type SsmEmulatorOptions = AwsEmulatorOptions;

export class AwsSsmParameterEmulator extends AwsJsonEmulator<SsmOperation> {
  readonly store: ParameterStore;
  private readonly denied = new Set<string>();

  constructor(opts: SsmEmulatorOptions = {}) {
    super(
      {
        name: 'aws-ssm-parameter',
        notFound: () => awsJsonError('UnknownOperationException', 'Unknown operation', { frontEnd: true, namespace: NAMESPACE }),
        serverFault: { type: 'InternalServerError', message: 'An error occurred on the server side.' },
        targetPrefix: 'AmazonSSM',
      },
      opts,
    );
    this.store = new ParameterStore({ region: this.region, accountId: this.accountId });
  }

  // ---------------------------------------------------------------- test/demo helpers

  /** Puts a new version of `name` holding `value` (created as a SecureString unless `type` says otherwise). Returns its version. */
  seed(name: string, value: string, opts: { type?: SsmParameterType; keyId?: string; labels?: string[]; tier?: 'Standard' | 'Advanced' } = {}): number {
    return this.store.seed(name, value, opts);
  }

  /** Every stored version of `name`, oldest first, with its plain value. */
  versions(name: string): VersionView[] {
    return this.store.versions(name);
  }

  /** The plain value behind `name`, `name:VERSION` or `name:LABEL`; undefined when there is none. */
  value(selector: string): string | undefined {
    return this.store.valueOf(selector);
  }

  /** Every call of `action` (on `name`, when given) answers AccessDeniedException until allowAction. */
  denyAction(action: SsmOperation, name?: string): void {
    this.denied.add(name ? `${action}:${name}` : action);
  }

  allowAction(action: SsmOperation, name?: string): void {
    this.denied.delete(name ? `${action}:${name}` : action);
  }

  clearFaults(): void {
    this.faults.clear();
    this.denied.clear();
    this.store.kms.clear();
    this.server.clearFaults();
  }

  // ---------------------------------------------------------------- protocol

  protected handle(req: EmuRequest): EmuResponse {
    const denial = this.identities.authenticate(req, 'ssm', this.verifySignatures);
    if (denial) return denial;
    const target = String(req.headers['x-amz-target'] ?? '');
    const op = target.startsWith('AmazonSSM.') ? target.slice('AmazonSSM.'.length) : '';
    if (!(SSM_OPERATIONS as readonly string[]).includes(op)) {
      return awsJsonError('UnknownOperationException', `Unknown operation ${target || '(no X-Amz-Target)'}`, { frontEnd: true, namespace: NAMESPACE });
    }
    const action = op as SsmOperation;
    const injected = this.faults.take(action, NAMESPACE);
    if (injected) return injected;
    const input = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
    const who = this.caller(req);
    const refused = this.refusal(action, input, who);
    if (refused) return refused;
    try {
      return awsJsonOk(this.run(action, input, who));
    } catch (err) {
      if (err instanceof AwsFailure) return err.response;
      throw err;
    }
  }

  private caller(req: EmuRequest): string {
    const auth = parseAuthorization(req.headers.authorization);
    return `arn:aws:iam::${this.accountId}:user/emulator-${typeof auth === 'object' ? auth.accessKeyId : 'unknown'}`;
  }

  /** An IAM denial, worded as AWS words it. */
  private refusal(action: SsmOperation, input: Record<string, unknown>, who: string): EmuResponse | undefined {
    const name = String(input.Name ?? input.Path ?? '').split(':')[0]!;
    if (!this.denied.has(action) && !this.denied.has(`${action}:${name}`)) return undefined;
    const arn = `arn:aws:ssm:${this.region}:${this.accountId}:parameter${name.startsWith('/') ? '' : '/'}${name}`;
    return awsJsonError(
      'AccessDeniedException',
      `User: ${who} is not authorized to perform: ssm:${action} on resource: ${arn} because no identity-based policy allows the ssm:${action} action`,
      { namespace: NAMESPACE },
    );
  }

  private run(action: SsmOperation, input: Record<string, unknown>, who: string): Record<string, unknown> {
    const s = this.store;
    switch (action) {
      case 'GetParameter':
        return { Parameter: s.getParameter(String(input.Name ?? ''), input.WithDecryption === true, who) };
      case 'GetParameterHistory':
        return s.history(String(input.Name ?? ''), input, who);
      case 'GetParametersByPath':
        return s.byPath(input, who);
      case 'PutParameter':
        return s.put(input, who);
      case 'LabelParameterVersion':
        return s.label(input);
      case 'UnlabelParameterVersion':
        return s.unlabel(input);
      case 'DeleteParameter':
        return s.remove(String(input.Name ?? ''));
    }
  }
}
