import { randomInt } from 'node:crypto';
import sodium from 'libsodium-wrappers';
import type { EmuRequest, EmuResponse } from '../server.ts';

// libsodium compiles its WebAssembly once, before any key pair is made.
await sodium.ready;

/**
 * The GitHub emulator's state: repositories, organisations, their secret stores (each with its own
 * libsodium key pair, as GitHub gives every repository, environment and organisation its own
 * public key), workflows and their runs. The emulator decrypts what clients seal, as GitHub does,
 * so tests can see what a secret holds; the API never returns a value.
 */

export const DOCS = 'https://docs.github.com/rest';

/** GitHub's timestamps: ISO 8601 to the second (`2020-01-10T14:59:22Z`). */
export const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export interface StoredSecret {
  name: string;
  value: string;
  createdAt: number;
  updatedAt: number;
  /** Organisation secrets only. */
  visibility?: 'all' | 'private' | 'selected';
  selectedRepositoryIds?: number[];
}

/** One place secrets live (a repository's Actions or Dependabot secrets, an environment, an organisation). */
export class SecretStore {
  keyId = '';
  private keyPair!: { publicKey: Uint8Array; privateKey: Uint8Array };
  readonly secrets = new Map<string, StoredSecret>();
  /** Every key pair this store ever had, newest last (to open what was sealed to an older key). */
  private readonly history: Array<{ publicKey: Uint8Array; privateKey: Uint8Array }> = [];

  constructor() {
    this.rotateKey();
  }

  /** A new key pair and key id, as when GitHub rotates a public key. */
  rotateKey(): void {
    this.keyPair = sodium.crypto_box_keypair();
    this.history.push(this.keyPair);
    // GitHub's key ids are long decimal strings ("568250167242549743").
    this.keyId = `${randomInt(100_000_000, 999_999_999)}${randomInt(100_000_000, 999_999_999)}`;
  }

  publicKeyBase64(): string {
    return sodium.to_base64(this.keyPair.publicKey, sodium.base64_variants.ORIGINAL);
  }

  /** Opens a sealed box sealed to this store's CURRENT key; undefined when it is not one. */
  open(encryptedBase64: string): string | undefined {
    return openWith(this.keyPair, encryptedBase64);
  }

  /** Opens a sealed box sealed to any key this store ever had (test helpers, fault matching). */
  openAny(encryptedBase64: string): string | undefined {
    for (const kp of this.history) {
      const v = openWith(kp, encryptedBase64);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  get(name: string): StoredSecret | undefined {
    return this.secrets.get(name.toUpperCase());
  }
}

function openWith(kp: { publicKey: Uint8Array; privateKey: Uint8Array }, encryptedBase64: string): string | undefined {
  try {
    const sealed = sodium.from_base64(encryptedBase64, sodium.base64_variants.ORIGINAL);
    return sodium.to_string(sodium.crypto_box_seal_open(sealed, kp.publicKey, kp.privateKey));
  } catch {
    return undefined;
  }
}

export interface Workflow {
  id: number;
  name: string;
  /** `.github/workflows/<file>`. */
  path: string;
  /** Whether the workflow file has an `on: workflow_dispatch` trigger. */
  dispatchable: boolean;
  /** The environment its job runs in (`environment:`): its secrets too reach the run. */
  environment?: string;
}

export interface WorkflowRun {
  id: number;
  runNumber: number;
  workflow: Workflow;
  event: string;
  headBranch: string;
  createdAt: number;
  startsAt: number;
  endsAt: number;
  conclusion: 'success' | 'failure';
  /** The Actions secrets the run saw (organisation's, repository's, its environment's): name → value. */
  secretsSeen: Record<string, string>;
}

export interface Environment {
  id: number;
  name: string;
  createdAt: number;
  store: SecretStore;
}

export interface Repo {
  id: number;
  owner: string;
  name: string;
  private: boolean;
  branches: Set<string>;
  actions: SecretStore;
  dependabot: SecretStore;
  environments: Map<string, Environment>;
  workflows: Workflow[];
  runs: WorkflowRun[];
}

export interface Org {
  id: number;
  login: string;
  actions: SecretStore;
  dependabot: SecretStore;
}

/** Fine-grained permissions the emulator checks (GitHub's names, lower-cased). */
export type Permission =
  | 'secrets'
  | 'environments'
  | 'dependabot_secrets'
  | 'actions'
  | 'organization_secrets'
  | 'organization_dependabot_secrets';
export type Access = 'read' | 'write';

export interface TokenInfo {
  /** `pat`: a personal access token (lists /user/repos); `installation`: a GitHub App installation token (GITHUB_TOKEN). */
  kind: 'pat' | 'installation';
  permissions: Map<Permission, Access>;
  /** `owner/name` the token reaches; undefined = every repository. */
  repos: Set<string> | undefined;
  /** Organisations the token reaches; undefined = every one. */
  orgs: Set<string> | undefined;
  userId: number;
  remaining: number;
  resetAt: number;
}

/** GitHub's error body: `{message, documentation_url, status}` (the status as a string). */
export function ghError(status: number, message: string, extra: { headers?: Record<string, string>; docs?: string } = {}): EmuResponse {
  return { status, headers: extra.headers, body: { message, documentation_url: extra.docs ?? DOCS, status: String(status) } };
}

/** `per_page` (default 30, max 100) and `page`, with GitHub's `Link` header (rel next/last). */
export function paginate<T>(req: EmuRequest, items: T[]): { items: T[]; headers: Record<string, string> } {
  const perPage = Math.min(100, Math.max(1, Number(req.query.get('per_page') ?? 30) || 30));
  const page = Math.max(1, Number(req.query.get('page') ?? 1) || 1);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const link = (p: number, rel: string) => {
    const q = new URLSearchParams(req.query);
    q.set('page', String(p));
    q.set('per_page', String(perPage));
    return `<${req.headers.host ? `http://${req.headers.host}` : ''}${req.path}?${q.toString()}>; rel="${rel}"`;
  };
  const links = page < last ? [link(page + 1, 'next'), link(last, 'last')] : [];
  return { items: items.slice((page - 1) * perPage, page * perPage), headers: links.length ? { link: links.join(', ') } : {} };
}

/** GitHub's secret-name rules (docs: "Naming your secrets"). */
export function secretNameProblem(name: string): string | undefined {
  if (!/^[A-Za-z0-9_]+$/.test(name)) return 'Secret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_).';
  if (/^[0-9]/.test(name)) return 'Secret names must not start with a number.';
  if (/^GITHUB_/i.test(name)) return 'Secret names must not start with the GITHUB_ prefix.';
  return undefined;
}
