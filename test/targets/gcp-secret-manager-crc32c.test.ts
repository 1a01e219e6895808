import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { crc32c } from '../../src/targets/gcp-secret-manager/crc32c.ts';

/** Bit-at-a-time CRC32C straight from the definition: the reference the table version must match. */
function reference(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe('crc32c (Castagnoli)', () => {
  it('matches the published check value and the RFC 3720 B.4 test vectors', () => {
    expect(crc32c('')).toBe(0);
    expect(crc32c('123456789')).toBe(0xe3069283); // the CRC-32C "check" value
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  it('equals the bitwise definition on arbitrary data, always as an unsigned 32-bit integer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        const c = crc32c(bytes);
        expect(c).toBe(reference(bytes));
        expect(Number.isInteger(c) && c >= 0 && c <= 0xffffffff).toBe(true);
      }),
    );
  });

  it('hashes strings as their UTF-8 bytes', () => {
    // Any code point, lone surrogates included. (fast-check's own `unit: 'binary'` strings take
    // ~90 ms each to generate, which made this a 10-second test.)
    const anyString = fc.array(fc.integer({ min: 0, max: 0x10ffff }), { maxLength: 200 }).map((cps) => String.fromCodePoint(...cps));
    fc.assert(fc.property(anyString, (s) => crc32c(s) === crc32c(Buffer.from(s, 'utf8'))));
  });
});
