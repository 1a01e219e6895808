import type { AwsCredentials } from './aws-json.ts';
import { AwsIdentities } from './aws-json.ts';

/**
 * `keyrot demo` merges every provider's environment into one, and the AWS SDK reads one access key
 * from it (AWS_ACCESS_KEY_ID): so every AWS emulator of the demo accepts the same throw-away key,
 * generated once per process, valid only against these emulators.
 */
let shared: AwsCredentials | undefined;

export function demoAwsCredentials(): AwsCredentials {
  shared ??= new AwsIdentities().add();
  return shared;
}

/**
 * The demo's AWS environment: that key, through the default chain's environment link.
 * AWS_PROFILE and AWS_SESSION_TOKEN are blanked so a developer's own AWS setup cannot take
 * precedence or leak into the demo.
 */
export function demoAwsEnv(): Record<string, string> {
  const c = demoAwsCredentials();
  return { AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey, AWS_SESSION_TOKEN: '', AWS_PROFILE: '' };
}
