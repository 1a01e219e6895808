/**
 * While google-auth-library looks for Application Default Credentials, gcp-metadata probes the
 * Compute Engine metadata server; off Google Cloud, when the probe fails with anything but a few
 * expected error codes (both addresses failing gives an AggregateError, which has no code), it
 * calls process.emitWarning, and Node prints
 *   (node:123) MetadataLookupWarning: received unexpected error = All promises were rejected code = UNKNOWN
 * (gcp-metadata 8.x, build/src/index.js isAvailable(); a known report: promptfoo/promptfoo#7771).
 * keyrot already says what matters ("no Google credentials found: ..."), so that one warning type
 * is dropped; every other warning goes through. KEYROT_DEBUG=1 keeps it.
 */
let installed = false;

export function dropMetadataLookupWarnings(): void {
  if (installed || process.env.KEYROT_DEBUG) return;
  installed = true;
  const emitWarning = process.emitWarning;
  process.emitWarning = function (this: NodeJS.Process, warning: string | Error, ...rest: unknown[]) {
    const option = rest[0] as string | { type?: string } | undefined;
    const type = typeof option === 'string' ? option : option?.type;
    if (type === 'MetadataLookupWarning' || (warning instanceof Error && warning.name === 'MetadataLookupWarning')) return;
    return (emitWarning as (...a: unknown[]) => void).call(this, warning, ...rest);
  } as typeof process.emitWarning;
}
