import { AwsFailure, awsJsonError } from '../aws-json.ts';
import { createHash } from 'node:crypto';

/**
 * The state behind the Parameter Store emulator and the rules AWS applies to it. Sources: the
 * request/response shapes and error docs of @aws-sdk/client-ssm 3.x (dist-types/models and
 * commands: PutParameter, GetParameter, GetParameterHistory, GetParametersByPath,
 * LabelParameterVersion, UnlabelParameterVersion, DeleteParameter), and the messages moto's tests
 * pin (getmoto/moto tests/test_ssm/test_ssm_boto3.py). Where AWS's behaviour is not documented the
 * comment says "assumption".
 */

export type SsmParameterType = 'String' | 'StringList' | 'SecureString';
type Tier = 'Standard' | 'Advanced';

interface StoredVersion {
  version: number;
  value: string;
  labels: string[];
  keyId: string | undefined;
  description: string | undefined;
  lastModifiedDate: number;
  lastModifiedUser: string;
}

interface StoredParameter {
  name: string;
  type: SsmParameterType;
  tier: Tier;
  /** Oldest first; at most 100 (older ones are dropped). */
  versions: StoredVersion[];
}

export interface VersionView {
  version: number;
  value: string;
  labels: string[];
  keyId: string | undefined;
}

const NAMESPACE = 'com.amazonaws.ssm';
export const DEFAULT_KEY = 'alias/aws/ssm';
const MAX_VERSIONS = 100;
const MAX_LABELS = 10;
/** Value limits: 4 KB standard, 8 KB advanced (PutParameterRequest.Value doc). */
const VALUE_LIMIT: Record<Tier, number> = { Standard: 4096, Advanced: 8192 };

/** A stand-in for the ciphertext AWS returns for a SecureString read without decryption. */
export function ciphertextOf(value: string, keyId: string): string {
  return Buffer.from(`emu-kms:${keyId}:${createHash('sha256').update(value).digest('hex')}`).toString('base64');
}

export function fail(type: string, message: string): never {
  throw new AwsFailure(awsJsonError(type, message, { namespace: NAMESPACE }));
}

/** Real AWS sends ParameterNotFound without a message (aws/aws-sdk-js#4330, awslabs/aws-simple-cicd#10). */
const notFound = (_name: string): never => fail('ParameterNotFound', '');
const versionNotFound = (version: number | string, name: string): never =>
  fail('ParameterVersionNotFound', `Systems Manager could not find version ${version} of ${name}. Verify the version and try again.`);

/** KMS as Parameter Store sees it: which keys exist, which the caller may not use. */
export class KmsKeys {
  readonly known = new Set<string>([DEFAULT_KEY]);
  private readonly denied = new Set<string>();

  add(keyId: string): void {
    this.known.add(keyId);
  }

  /** Encrypting or decrypting with `keyId` answers AccessDeniedException (a KMS key policy without this caller). */
  deny(keyId: string): void {
    this.denied.add(keyId);
  }

  clear(): void {
    this.denied.clear();
  }

  check(keyId: string, action: 'kms:Decrypt' | 'kms:Encrypt' | 'kms:GenerateDataKey', who: string, region: string, accountId: string): void {
    if (!this.denied.has(keyId)) return;
    const key = keyId.startsWith('arn:') ? keyId : `arn:aws:kms:${region}:${accountId}:${keyId.startsWith('alias/') ? keyId : `key/${keyId}`}`;
    fail(
      'AccessDeniedException',
      `User: ${who} is not authorized to perform: ${action} on resource: ${key} because no identity-based policy allows the ${action} action (Service: AWSKMS; Status Code: 400; Error Code: AccessDeniedException)`,
    );
  }
}

export class ParameterStore {
  readonly kms = new KmsKeys();
  private readonly params = new Map<string, StoredParameter>();
  private readonly region: string;
  private readonly accountId: string;

  constructor(o: { region: string; accountId: string }) {
    this.region = o.region;
    this.accountId = o.accountId;
  }

  // ---------------------------------------------------------------- helpers for tests

  seed(name: string, value: string, o: { type?: SsmParameterType; keyId?: string; labels?: string[]; tier?: Tier } = {}): number {
    const type = o.type ?? 'SecureString';
    const keyId = type === 'SecureString' ? (o.keyId ?? DEFAULT_KEY) : undefined;
    if (keyId) this.kms.add(keyId);
    const p = this.params.get(name) ?? this.create(name, type, o.tier ?? 'Standard');
    const v = this.append(p, { value, keyId, description: undefined }, 'arn:aws:iam::000000000000:user/seed');
    if (o.labels?.length) this.attachLabels(p, v.version, o.labels);
    return v.version;
  }

  versions(name: string): VersionView[] {
    const p = this.params.get(name);
    return (p?.versions ?? []).map((v) => ({ version: v.version, value: v.value, labels: [...v.labels], keyId: v.keyId }));
  }

  valueOf(selector: string): string | undefined {
    try {
      return this.resolve(selector).v.value;
    } catch {
      return undefined;
    }
  }

  names(): string[] {
    return [...this.params.keys()];
  }

  // ---------------------------------------------------------------- operations

  getParameter(selector: string, decrypt: boolean, who: string): Record<string, unknown> {
    const { p, v, selected } = this.resolve(selector);
    return { ...this.view(p, v, decrypt, who), ...(selected ? { Selector: selected } : {}) };
  }

  history(name: string, input: Record<string, unknown>, who: string): Record<string, unknown> {
    const p = this.params.get(name) ?? notFound(name);
    const decrypt = input.WithDecryption === true;
    const { page, next } = paginate(p.versions, input, 50);
    const entries = page.map((v) => ({
      Name: p.name,
      Type: p.type,
      ...(v.keyId ? { KeyId: v.keyId } : {}),
      LastModifiedDate: v.lastModifiedDate,
      LastModifiedUser: v.lastModifiedUser,
      ...(v.description ? { Description: v.description } : {}),
      Value: this.shown(p, v, decrypt, who),
      Version: v.version,
      Labels: [...v.labels],
      Tier: p.tier,
      Policies: [],
      DataType: 'text',
    }));
    return { Parameters: entries, ...(next ? { NextToken: next } : {}) };
  }

  byPath(input: Record<string, unknown>, who: string): Record<string, unknown> {
    const path = String(input.Path ?? '');
    if (!path.startsWith('/')) fail('ValidationException', `The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash "/".`);
    const recursive = input.Recursive === true;
    const under = [...this.params.values()].filter((p) => isUnder(p.name, path, recursive)).sort((a, b) => (a.name < b.name ? -1 : 1));
    const { page, next } = paginate(under, input, 10);
    const decrypt = input.WithDecryption === true;
    return { Parameters: page.map((p) => this.view(p, p.versions.at(-1)!, decrypt, who)), ...(next ? { NextToken: next } : {}) };
  }

  put(input: Record<string, unknown>, who: string): Record<string, unknown> {
    const name = checkName(String(input.Name ?? ''));
    const value = typeof input.Value === 'string' ? input.Value : '';
    if (!value) fail('ValidationException', "1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1.");
    const existing = this.params.get(name);
    if (existing && input.Overwrite !== true) {
      fail('ParameterAlreadyExists', 'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.');
    }
    const p = existing ?? this.createFor(name, input);
    const tier = this.tierFor(p, input, value);
    const keyId = this.keyFor(p, input, who, tier);
    if (p.versions.length >= MAX_VERSIONS) this.dropOldest(p);
    p.tier = tier;
    const description = typeof input.Description === 'string' ? input.Description : p.versions.at(-1)?.description;
    const v = this.append(p, { value, keyId, description }, who);
    return { Version: v.version, Tier: p.tier };
  }

  label(input: Record<string, unknown>): Record<string, unknown> {
    const name = String(input.Name ?? '');
    const p = this.params.get(name) ?? notFound(name);
    const version = typeof input.ParameterVersion === 'number' ? input.ParameterVersion : p.versions.at(-1)!.version;
    const labels = Array.isArray(input.Labels) ? input.Labels.map(String) : [];
    if (labels.length < 1 || labels.length > MAX_LABELS) fail('ValidationException', `1 validation error detected: Value at 'labels' failed to satisfy constraint: Member must have length between 1 and ${MAX_LABELS}`);
    const invalid = labels.filter((l) => !validLabel(l));
    this.attachLabels(p, version, labels.filter(validLabel));
    return { InvalidLabels: invalid, ParameterVersion: version };
  }

  unlabel(input: Record<string, unknown>): Record<string, unknown> {
    const name = String(input.Name ?? '');
    const p = this.params.get(name) ?? notFound(name);
    const version = Number(input.ParameterVersion);
    const v = p.versions.find((x) => x.version === version) ?? versionNotFound(version, name);
    const labels = Array.isArray(input.Labels) ? input.Labels.map(String) : [];
    const removed = labels.filter((l) => v.labels.includes(l));
    v.labels = v.labels.filter((l) => !removed.includes(l));
    return { RemovedLabels: removed, InvalidLabels: labels.filter((l) => !removed.includes(l)) };
  }

  remove(name: string): Record<string, unknown> {
    if (!this.params.delete(name)) notFound(name);
    return {};
  }

  // ---------------------------------------------------------------- rules

  /** `name`, `name:VERSION` or `name:LABEL` (GetParameterRequest.Name doc); an unknown label is ParameterNotFound (moto). */
  private resolve(selector: string): { p: StoredParameter; v: StoredVersion; selected?: string } {
    const parts = selector.split(':');
    const p = (parts.length <= 2 ? this.params.get(parts[0]!) : undefined) ?? notFound(selector);
    if (parts.length === 1) return { p, v: p.versions.at(-1)! };
    const sel = parts[1]!;
    if (/^\d+$/.test(sel)) return { p, v: p.versions.find((x) => x.version === Number(sel)) ?? versionNotFound(sel, p.name), selected: `:${sel}` };
    return { p, v: p.versions.find((x) => x.labels.includes(sel)) ?? notFound(selector), selected: `:${sel}` };
  }

  private view(p: StoredParameter, v: StoredVersion, decrypt: boolean, who: string): Record<string, unknown> {
    return {
      Name: p.name,
      Type: p.type,
      Value: this.shown(p, v, decrypt, who),
      Version: v.version,
      LastModifiedDate: v.lastModifiedDate,
      ARN: `arn:aws:ssm:${this.region}:${this.accountId}:parameter${p.name.startsWith('/') ? '' : '/'}${p.name}`,
      DataType: 'text',
    };
  }

  /** A SecureString's plain value only with decryption (and kms:Decrypt); its ciphertext otherwise. */
  private shown(p: StoredParameter, v: StoredVersion, decrypt: boolean, who: string): string {
    if (p.type !== 'SecureString') return v.value;
    if (!decrypt) return ciphertextOf(v.value, v.keyId ?? DEFAULT_KEY);
    this.kms.check(v.keyId ?? DEFAULT_KEY, 'kms:Decrypt', who, this.region, this.accountId);
    return v.value;
  }

  private create(name: string, type: SsmParameterType, tier: Tier): StoredParameter {
    const p: StoredParameter = { name, type, tier, versions: [] };
    this.params.set(name, p);
    return p;
  }

  private createFor(name: string, input: Record<string, unknown>): StoredParameter {
    const type = input.Type as SsmParameterType | undefined;
    if (!type) fail('ValidationException', 'A parameter type is required when you create a parameter.');
    if (!['String', 'StringList', 'SecureString'].includes(type!)) fail('UnsupportedParameterType', `The parameter type ${type} isn't supported.`);
    // Not stored until the version is appended: a refused first put leaves nothing behind.
    return { name, type: type!, tier: 'Standard', versions: [] };
  }

  /** Assumption: without `Tier` a parameter keeps its tier; an advanced one is never downgraded (PutParameterRequest.Tier doc). */
  private tierFor(p: StoredParameter, input: Record<string, unknown>, value: string): Tier {
    const asked = input.Tier === 'Advanced' || input.Tier === 'Standard' ? input.Tier : undefined;
    if (asked === 'Standard' && p.tier === 'Advanced') fail('ValidationException', `Parameter ${p.name} uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier.`);
    const tier = asked ?? p.tier;
    if (value.length > VALUE_LIMIT[tier]) {
      fail('ValidationException', `${tier} tier parameters support a maximum parameter value of ${VALUE_LIMIT[tier]} characters.`);
    }
    return tier;
  }

  /**
   * The KMS key of the new version: `KeyId`, else the default `alias/aws/ssm` ("If you don't specify
   * a key ID, the system uses the default key", PutParameterRequest.KeyId doc; assumption: on an
   * overwrite too). A type change is refused (assumption, HierarchyTypeMismatchException doc).
   */
  private keyFor(p: StoredParameter, input: Record<string, unknown>, who: string, tier: Tier): string | undefined {
    if (input.Type !== undefined && input.Type !== p.type) {
      fail('HierarchyTypeMismatchException', `The parameter type of ${p.name} is ${p.type} and can't be changed to ${String(input.Type)}.`);
    }
    if (p.type !== 'SecureString') {
      if (input.KeyId !== undefined) fail('ValidationException', 'KeyId is required for SecureString type parameter only.');
      return undefined;
    }
    const keyId = typeof input.KeyId === 'string' ? input.KeyId : DEFAULT_KEY;
    if (!this.kms.known.has(keyId)) fail('InvalidKeyId', `The query key ID isn't valid: ${keyId}`);
    this.kms.check(keyId, tier === 'Advanced' ? 'kms:GenerateDataKey' : 'kms:Encrypt', who, this.region, this.accountId);
    return keyId;
  }

  /** The oldest version goes when a 101st is created, unless it has a label (ParameterMaxVersionLimitExceeded doc). */
  private dropOldest(p: StoredParameter): void {
    const oldest = p.versions[0]!;
    if (oldest.labels.length) {
      fail(
        'ParameterMaxVersionLimitExceeded',
        `You attempted to create a new version of ${p.name} by calling the PutParameter API with the overwrite flag. Version ${oldest.version}, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.`,
      );
    }
    p.versions.shift();
  }

  private append(p: StoredParameter, v: { value: string; keyId: string | undefined; description: string | undefined }, who: string): StoredVersion {
    this.params.set(p.name, p);
    const version = (p.versions.at(-1)?.version ?? 0) + 1;
    const stored: StoredVersion = { version, ...v, labels: [], lastModifiedDate: Date.now() / 1000, lastModifiedUser: who };
    p.versions.push(stored);
    return stored;
  }

  /** A label lives on one version: attaching moves it; a version holds at most 10 (LabelParameterVersion doc). */
  private attachLabels(p: StoredParameter, version: number, labels: string[]): void {
    const v = p.versions.find((x) => x.version === version) ?? versionNotFound(version, p.name);
    const merged = [...new Set([...v.labels, ...labels])];
    if (merged.length > MAX_LABELS) {
      fail('ParameterVersionLabelLimitExceeded', 'A parameter version can have maximum 10 labels.Move one or more labels to another version and try again.');
    }
    for (const other of p.versions) if (other !== v) other.labels = other.labels.filter((l) => !labels.includes(l));
    v.labels = merged;
  }
}

/**
 * Names: a-zA-Z0-9_.- and `/`, not prefixed with aws/ssm, at most 15 levels (PutParameterRequest.Name
 * doc, HierarchyLevelLimitExceededException doc).
 */
function checkName(name: string): string {
  if (!/^[a-zA-Z0-9_.\-/]+$/.test(name)) fail('ParameterPatternMismatchException', `Parameter name: ${name} isn't valid.`);
  if (/^\/?(aws|ssm)/i.test(name)) fail('ValidationException', 'Parameter name: can\'t be prefixed with "aws" or "ssm" (case-insensitive).');
  if (name.split('/').filter(Boolean).length > 15) {
    fail('HierarchyLevelLimitExceededException', 'A hierarchy can have a maximum of 15 levels.');
  }
  return name;
}

/** Labels: ≤ 100 of letters, digits, `.`, `-`, `_`; not starting with a digit, aws or ssm (LabelParameterVersion doc). */
function validLabel(l: string): boolean {
  return /^[a-zA-Z_.-][a-zA-Z0-9_.-]{0,99}$/.test(l) && !/^(aws|ssm)/i.test(l);
}

/** Direct children of `path`, or everything beneath it with `Recursive` (GetParametersByPathRequest doc). */
function isUnder(name: string, path: string, recursive: boolean): boolean {
  const prefix = path.endsWith('/') ? path : `${path}/`;
  const full = name.startsWith('/') ? name : `/${name}`;
  if (!full.startsWith(prefix)) return false;
  return recursive || !full.slice(prefix.length).includes('/');
}

/** MaxResults between 1 and `max` (default `max`), an opaque NextToken. */
function paginate<T>(all: T[], input: Record<string, unknown>, max: number): { page: T[]; next?: string } {
  const size = input.MaxResults === undefined ? max : Number(input.MaxResults);
  if (!Number.isInteger(size) || size < 1 || size > max) {
    fail('ValidationException', `1 validation error detected: Value '${String(input.MaxResults)}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to ${max}`);
  }
  let start = 0;
  if (typeof input.NextToken === 'string') {
    const m = /^emu:(\d+)$/.exec(Buffer.from(input.NextToken, 'base64url').toString('utf8'));
    if (!m || Number(m[1]) > all.length) fail('InvalidNextToken', 'The specified token isn\'t valid.');
    start = Number(m![1]);
  }
  const end = start + size;
  return { page: all.slice(start, end), ...(end < all.length ? { next: Buffer.from(`emu:${end}`).toString('base64url') } : {}) };
}
