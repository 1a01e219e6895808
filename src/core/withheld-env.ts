/**
 * Keys and credentials keyrot reads from its environment are moved out of `process.env` before
 * anything runs, and kept here. Every child process inherits `process.env`: ours (git), and the
 * ones the provider SDKs start on their own — a kubeconfig `exec` plugin (@kubernetes/client-node
 * spawns it with process.env), an AWS profile's `credential_process` (@aws-sdk/credential-provider-
 * process runs it with the parent's environment), the Azure CLI credential (`az account
 * get-access-token`), gcloud or an executable-sourced credential (google-auth-library). A child
 * environment keyrot builds itself can be scrubbed (`childEnv`); theirs cannot, so the values
 * must be gone from process.env before any of them can run. keyrot itself reads them through
 * `keyrotEnv()`: the scheduler re-reads `env:` sources on every run.
 */
import { registerSensitive } from './secret.ts';

const withheld = new Map<string, string>();

/** A value shorter than this is not looked for under other names (it could be "1" or "true"). */
const MIN_SHARED_VALUE = 8;

/**
 * Moves `names` out of process.env, and any other variable holding one of their values (the same
 * key exported twice). Idempotent; a name that is not set is ignored.
 */
export function withholdFromChildren(names: Iterable<string>): void {
  const values = new Set<string>();
  for (const name of names) {
    const value = process.env[name];
    if (value === undefined) continue;
    withheld.set(name, value);
    delete process.env[name];
    registerSensitive(value.trim()); // whatever prints it later prints it redacted
    if (value.trim().length >= MIN_SHARED_VALUE) values.add(value.trim());
  }
  if (!values.size) return;
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && values.has(value.trim())) {
      withheld.set(name, value);
      delete process.env[name];
    }
  }
}

/** The environment keyrot reads: process.env as it is now, plus the variables withheld from it. */
export function keyrotEnv(): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(withheld), ...process.env };
}
