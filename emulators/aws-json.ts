import { randomBytes, randomUUID } from 'node:crypto';
import { HttpEmulator, type EmuRequest, type EmuResponse, type RecordedRequest } from './server.ts';
import { expectedSignature, parseAuthorization, signatureMatches } from './aws-secrets-manager/sigv4.ts';

/**
 * What every loopback emulator of an AWS awsJson1_1 service shares: `POST /` with
 * `X-Amz-Target: <ServiceTarget>.<Operation>` and `Content-Type: application/x-amz-json-1.1`,
 * SigV4-checked credentials, the error shape, and injected faults. Errors are HTTP 400 (500 for
 * server faults) with `{"__type": "...", "message": "..."}` and an `x-amzn-ErrorType` header: the
 * SDK reads the code from `__type`, then `code`, then that header (@smithy/core protocols,
 * loadJsonRpcErrorCode), and the message from `message` or `Message`.
 */

export const JSON11 = 'application/x-amz-json-1.1';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** The error AWS would send. `frontEnd` errors (auth, throttling) come from AWS's front end, not the service. */
export function awsJsonError(type: string, message: string, opts: { status?: number; frontEnd?: boolean; namespace: string; messageKey?: string }): EmuResponse {
  const ns = opts.frontEnd ? 'com.amazon.coral.service' : opts.namespace;
  return {
    status: opts.status ?? 400,
    headers: { 'content-type': JSON11, 'x-amzn-RequestId': randomUUID(), 'x-amzn-ErrorType': `${type}:http://internal.amazon.com/coral/${ns}/` },
    // Some services send no message at all (SSM's ParameterNotFound: aws/aws-sdk-js#4330).
    body: { __type: type, ...(message ? { [opts.frontEnd ? 'message' : (opts.messageKey ?? 'message')]: message } : {}) },
  };
}

export function awsJsonOk(body: Record<string, unknown>): EmuResponse {
  return { status: 200, headers: { 'content-type': JSON11, 'x-amzn-RequestId': randomUUID() }, body };
}

/** An AWS error thrown inside an operation, answered by the dispatcher. */
export class AwsFailure extends Error {
  readonly response: EmuResponse;
  constructor(response: EmuResponse) {
    super('aws failure');
    this.response = response;
  }
}

/** Access keys the emulator knows, and the SigV4 check of a request against them. */
export class AwsIdentities {
  private readonly known = new Map<string, AwsCredentials & { expired: boolean }>();

  /** Registers an access key (generated when omitted) and returns it. */
  add(creds?: Partial<AwsCredentials>): AwsCredentials {
    const c: AwsCredentials = {
      // AKIA-shaped would be caught by the redactor's AWS key pattern; emulator keys say what they are.
      accessKeyId: creds?.accessKeyId ?? `EMU${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: creds?.secretAccessKey ?? randomBytes(30).toString('base64url'),
      ...(creds?.sessionToken ? { sessionToken: creds.sessionToken } : {}),
    };
    this.known.set(c.accessKeyId, { ...c, expired: false });
    return c;
  }

  /** The key id becomes unknown: calls signed with it get UnrecognizedClientException. */
  revoke(accessKeyId: string): void {
    this.known.delete(accessKeyId);
  }

  /** Calls signed with it get ExpiredTokenException (session credentials past their expiry). */
  expire(accessKeyId: string): void {
    const k = this.known.get(accessKeyId);
    if (k) k.expired = true;
  }

  /** The front end's answer to a request it refuses, or undefined when the signature holds. */
  authenticate(req: EmuRequest, service: string, verifySignatures: boolean): EmuResponse | undefined {
    const deny = (type: string, message: string) => awsJsonError(type, message, { frontEnd: true, namespace: '' });
    const auth = parseAuthorization(req.headers.authorization);
    if (auth === 'missing') return deny('MissingAuthenticationTokenException', 'Missing Authentication Token');
    if (auth === 'malformed') return deny('IncompleteSignatureException', 'Authorization header requires Credential, SignedHeaders and Signature parameters.');
    const known = this.known.get(auth.accessKeyId);
    const token = req.headers['x-amz-security-token'];
    // Real AWS answers an unknown key id, or session credentials with a wrong token, this way
    // (HTTP 400; seen verbatim in SDK issue reports, e.g. aws/aws-sdk-js-v3#6355).
    if (!known || (known.sessionToken !== undefined && token !== known.sessionToken)) {
      return deny('UnrecognizedClientException', 'The security token included in the request is invalid.');
    }
    if (known.expired) return deny('ExpiredTokenException', 'The security token included in the request is expired');
    if (auth.service !== service) return deny('InvalidSignatureException', `Credential should be scoped to correct service: '${service}'.`);
    if (!verifySignatures) return undefined;
    const expected = expectedSignature(req, auth, known.secretAccessKey);
    if (expected && signatureMatches(expected, auth.signature)) return undefined;
    return deny(
      'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    );
  }
}

interface InjectedFault<Op extends string> {
  action?: Op;
  type: string;
  message: string;
  status: number;
  frontEnd: boolean;
  times: number;
}

/** Faults a test injects: the next call(s) of an action answer an AWS error instead. */
export class AwsFaults<Op extends string> {
  private readonly faults: InjectedFault<Op>[] = [];
  private readonly serverError: { type: string; message: string };
  constructor(serverError: { type: string; message: string }) {
    this.serverError = serverError;
  }

  /** The next `times` calls (of `action`, when given) answer ThrottlingException (HTTP 400). */
  throttleNext(times = 1, action?: Op): void {
    this.faults.push({ action, type: 'ThrottlingException', message: 'Rate exceeded', status: 400, frontEnd: true, times });
  }

  /** The next call(s) answer an AWS error: the service's internal error (HTTP 500) by default. */
  failNext(f: { action?: Op; type?: string; message?: string; status?: number; times?: number } = {}): void {
    const type = f.type ?? this.serverError.type;
    const server = type === this.serverError.type;
    this.faults.push({
      action: f.action,
      type,
      message: f.message ?? (server ? this.serverError.message : type),
      status: f.status ?? (server ? 500 : 400),
      frontEnd: false,
      times: f.times ?? 1,
    });
  }

  /** The injected answer for this call, if one is due. */
  take(action: Op, namespace: string): EmuResponse | undefined {
    const i = this.faults.findIndex((f) => !f.action || f.action === action);
    if (i < 0) return undefined;
    const f = this.faults[i]!;
    if (--f.times <= 0) this.faults.splice(i, 1);
    return awsJsonError(f.type, f.message, { status: f.status, frontEnd: f.frontEnd, namespace });
  }

  clear(): void {
    this.faults.length = 0;
  }
}

/** The requests that reached the emulator, with their operation (`X-Amz-Target` without the service prefix) and parsed input. */
export function awsCalls(requests: RecordedRequest[], targetPrefix: string): Array<{ action: string; input: Record<string, unknown>; status: number }> {
  return requests.map((r) => {
    let input: Record<string, unknown> = {};
    try {
      input = JSON.parse(r.rawBody || '{}') as Record<string, unknown>;
    } catch {
      /* not JSON */
    }
    return { action: String(r.headers['x-amz-target'] ?? '').replace(`${targetPrefix}.`, ''), input, status: r.status };
  });
}

/** Options every AWS emulator takes. */
export interface AwsEmulatorOptions {
  region?: string;
  accountId?: string;
  /** Check SigV4 signatures (default true); the key id is always checked. */
  verifySignatures?: boolean;
}

/**
 * The server, identities, injected faults and call log every awsJson1_1 emulator has, and the
 * test helpers over them; a service adds its operations in `handle`.
 */
export abstract class AwsJsonEmulator<Op extends string> extends HttpEmulator {
  readonly region: string;
  readonly accountId: string;
  /** The access key the emulator starts with (throw-away, generated at run time). */
  readonly credentials: AwsCredentials;
  protected readonly verifySignatures: boolean;
  protected readonly identities = new AwsIdentities();
  protected readonly faults: AwsFaults<Op>;
  private readonly targetPrefix: string;

  constructor(
    protocol: { name: string; notFound: () => EmuResponse; serverFault: { type: string; message: string }; targetPrefix: string },
    opts: AwsEmulatorOptions,
  ) {
    super({ name: protocol.name, notFound: protocol.notFound });
    this.faults = new AwsFaults<Op>(protocol.serverFault);
    this.targetPrefix = protocol.targetPrefix;
    this.region = opts.region ?? 'us-east-1';
    this.accountId = opts.accountId ?? '123456789012';
    this.verifySignatures = opts.verifySignatures ?? true;
    this.credentials = this.identities.add();
    this.server.route('POST', '/', (req) => this.handle(req));
  }

  protected abstract handle(req: EmuRequest): EmuResponse;

  /** Registers an access key (generated when omitted) and returns it. */
  addCredentials(creds?: Partial<AwsCredentials>): AwsCredentials {
    return this.identities.add(creds);
  }

  /** The key id becomes unknown: calls signed with it get UnrecognizedClientException. */
  revokeCredentials(accessKeyId = this.credentials.accessKeyId): void {
    this.identities.revoke(accessKeyId);
  }

  /** Calls signed with it get ExpiredTokenException (session credentials past their expiry). */
  expireCredentials(accessKeyId = this.credentials.accessKeyId): void {
    this.identities.expire(accessKeyId);
  }

  /** The next call(s) (of `action`, when given) are throttled. */
  throttleNext(times = 1, action?: Op): void {
    this.faults.throttleNext(times, action);
  }

  /** The next call(s) answer an AWS error: the service's server fault (500) by default. */
  failNext(f: { action?: Op; type?: string; message?: string; status?: number; times?: number } = {}): void {
    this.faults.failNext(f);
  }

  /** Every call that reached the service (of `action`, when given), decoded. */
  calls(action?: Op): Array<{ action: string; input: Record<string, unknown>; status: number }> {
    return awsCalls(this.server.requests, this.targetPrefix).filter((c) => !action || c.action === action);
  }
}
