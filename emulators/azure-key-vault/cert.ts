import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIPv4 } from 'node:net';

/**
 * A self-signed TLS certificate made at run time with node:crypto only (Node has no certificate
 * generator and keyrot adds no dependency for one; the `openssl` CLI is not assumed either).
 * The SDK refuses plain http (allowInsecureConnection; azure-key-vault README), so the Key Vault emulator needs https.
 *
 * The certificate is a minimal X.509 v3 (RFC 5280) signed with ECDSA P-256/SHA-256:
 * basicConstraints CA:TRUE so it can be handed to a client as its own trust anchor
 * (`ca: certPem`), keyUsage digitalSignature+keyCertSign, extKeyUsage serverAuth and the
 * subjectAltNames the emulator answers on. It is valid for a day and never written anywhere
 * but the demo's temp directory.
 */
export interface SelfSignedCert {
  /** PEM certificate: also the CA the client must trust. */
  cert: string;
  /** PEM PKCS#8 private key. */
  key: string;
}

// --- minimal DER encoder (only what a certificate needs) ---------------------------------------

function der(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

const seq = (...items: Buffer[]) => der(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => der(0x31, Buffer.concat(items));
const octets = (b: Buffer) => der(0x04, b);
const bool = (v: boolean) => der(0x01, Buffer.from([v ? 0xff : 0x00]));
const utf8 = (s: string) => der(0x0c, Buffer.from(s, 'utf8'));
const explicit = (n: number, inner: Buffer) => der(0xa0 | n, inner);
/** BIT STRING with `unused` trailing bits in the last byte. */
const bits = (b: Buffer, unused = 0) => der(0x03, Buffer.concat([Buffer.from([unused]), b]));

function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let v = b.subarray(i);
  if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return der(0x02, v);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return der(0x06, Buffer.from(out));
}

/** UTCTime (YYMMDDHHMMSSZ): valid for dates before 2050, which a one-day certificate is. */
function utcTime(d: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, '0');
  const s = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return der(0x17, Buffer.from(s, 'ascii'));
}

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

export function generateSelfSignedCert(opts: {
  commonName: string;
  dnsNames: string[];
  ipAddresses?: string[];
  /** Defaults to one day. */
  validForMs?: number;
}): SelfSignedCert {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const now = Date.now();
  const name = seq(set(seq(oid(OID.commonName), utf8(opts.commonName))));
  const sigAlg = seq(oid(OID.ecdsaWithSha256));

  const san = seq(
    ...opts.dnsNames.map((d) => der(0x82, Buffer.from(d, 'ascii'))), // [2] dNSName (IA5String, implicit)
    ...(opts.ipAddresses ?? []).map((ip) => {
      if (!isIPv4(ip)) throw new TypeError(`only IPv4 addresses are supported in the emulator certificate: ${ip}`);
      return der(0x87, Buffer.from(ip.split('.').map(Number))); // [7] iPAddress (implicit)
    }),
  );
  // The SPKI BIT STRING is the last element of the SubjectPublicKeyInfo: its bytes (after the
  // unused-bits octet) are the EC point, which RFC 5280 §4.2.1.2 method 1 hashes for the key id.
  const ecPoint = spki.subarray(spki.length - 65);
  const extensions = seq(
    extension(OID.basicConstraints, true, seq(bool(true))),
    // digitalSignature (bit 0) + keyCertSign (bit 5) = 1000 0100, 2 unused bits.
    extension(OID.keyUsage, true, bits(Buffer.from([0x84]), 2)),
    extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
    extension(OID.subjectAltName, false, san),
    extension(OID.subjectKeyIdentifier, false, octets(createHash('sha1').update(ecPoint).digest())),
  );

  const serial = randomBytes(16);
  serial[0]! &= 0x7f; // positive
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(serial),
    sigAlg,
    name,
    seq(utcTime(new Date(now - 3_600_000)), utcTime(new Date(now + (opts.validForMs ?? 86_400_000)))),
    name,
    spki,
    explicit(3, extensions),
  );
  // ECDSA signatures from node:crypto are DER (r, s) by default: what X.509 wants.
  const signature = sign('sha256', tbs, privateKey as KeyObject);
  const certDer = seq(tbs, sigAlg, bits(signature));
  return {
    cert: toPem('CERTIFICATE', certDer),
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

function toPem(label: string, body: Buffer): string {
  const b64 = body.toString('base64').match(/.{1,64}/g)!.join('\n');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
