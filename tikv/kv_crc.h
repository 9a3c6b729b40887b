/* kv_crc.h — CRC-32 (IEEE 802.3, the polynomial of zlib and gzip), table-driven.
 *
 * Contract: kv_crc32(0, "123456789", 9) == 0xCBF43926. Feed a running value back as crc to
 * checksum data in pieces: kv_crc32(kv_crc32(0, a, n), b, m) == crc of a followed by b.
 * Detects accidental corruption only: it is not a MAC (encrypted files use AES-GCM's tag).
 */
#ifndef TISIM_KV_CRC_H
#define TISIM_KV_CRC_H

#include <stddef.h>
#include <stdint.h>

uint32_t kv_crc32(uint32_t crc, const void *data, size_t len);

#endif
