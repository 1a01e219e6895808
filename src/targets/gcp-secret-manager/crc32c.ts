/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum Secret Manager keeps for every
 * version's payload (`SecretPayload.data_crc32c`, an int64 holding the unsigned 32-bit value; source:
 * @google-cloud/secret-manager 6.3.0 build/protos/google/cloud/secretmanager/v1/resources.proto).
 * Node's zlib only offers the ISO-HDLC CRC-32 (a different polynomial), so a small table version
 * lives here. Checked against the RFC 3720 (iSCSI) test vectors in the tests.
 */
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The CRC32C of `data` as an unsigned 32-bit integer (0 ... 2^32-1). */
export function crc32c(data: Uint8Array | string): number {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
