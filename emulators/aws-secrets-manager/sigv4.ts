import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * Server-side check of an AWS Signature Version 4 `Authorization` header, enough for the
 * emulator to answer like AWS: no header → MissingAuthenticationToken, unknown key id →
 * UnrecognizedClient, wrong secret → InvalidSignature. The algorithm is the public one
 * (docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html): canonical request →
 * string to sign → HMAC chain over date/region/service/"aws4_request".
 */
export interface ParsedAuthorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

const AUTH_RE =
  /^AWS4-HMAC-SHA256\s+Credential=([^/\s,]+)\/(\d{8})\/([^/\s,]+)\/([^/\s,]+)\/aws4_request\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/;

export function parseAuthorization(header: string | undefined): ParsedAuthorization | 'missing' | 'malformed' {
  if (!header) return 'missing';
  const m = AUTH_RE.exec(header.trim());
  if (!m) return 'malformed';
  return {
    accessKeyId: m[1]!,
    date: m[2]!,
    region: m[3]!,
    service: m[4]!,
    signedHeaders: m[5]!.split(';'),
    signature: m[6]!,
  };
}

const sha256hex = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The signature AWS would compute for this request with `secretAccessKey`. */
export function expectedSignature(
  req: { method: string; path: string; query: URLSearchParams; headers: IncomingHttpHeaders; rawBody: string },
  auth: ParsedAuthorization,
  secretAccessKey: string,
): string | undefined {
  const amzDate = req.headers['x-amz-date'];
  if (typeof amzDate !== 'string') return undefined;
  const canonicalUri = req.path.split('/').map(uriEncode).join('/') || '/';
  const canonicalQuery = [...req.query.entries()]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : 1) : a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalHeaders = auth.signedHeaders
    .map((h) => {
      const raw = req.headers[h];
      const v = Array.isArray(raw) ? raw.join(',') : (raw ?? '');
      return `${h}:${String(v).trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const payloadHash = typeof req.headers['x-amz-content-sha256'] === 'string' ? req.headers['x-amz-content-sha256'] : sha256hex(req.rawBody);
  const canonicalRequest = [req.method, canonicalUri, canonicalQuery, canonicalHeaders, auth.signedHeaders.join(';'), payloadHash].join('\n');
  const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonicalRequest)].join('\n');
  let key = hmac(`AWS4${secretAccessKey}`, auth.date);
  key = hmac(key, auth.region);
  key = hmac(key, auth.service);
  key = hmac(key, 'aws4_request');
  return createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
}

export function signatureMatches(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'hex');
  const b = Buffer.from(given, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
