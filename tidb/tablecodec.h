/* tablecodec.h — how TiDB lays rows and index entries out as TiKV keys, and how tisim encodes
 * a row's values.
 *
 * Keys (TiDB's layout, memcomparable, so key order is value order):
 *   row:          't' | int(tableID) | "_r" | int(handle)                       (19 bytes)
 *   index entry:  't' | int(tableID) | "_i" | int(indexID) | datum... [| int datum(handle)]
 *   int(v):       8 bytes big-endian of v with the sign bit flipped (negative < positive)
 *   datum:        0x00 NULL | 0x03 int(v) | 0x01 bytes in groups of 8, each group padded with
 *                 0x00 and followed by a marker 0xFF - (pad bytes)
 * A non-unique index appends the handle as a datum, so equal values sort by handle and every
 * entry is its own key; the entry's value is empty.
 *
 * Row values (tisim's own, not TiDB's rowcodec): u16 column count, then per column u8 kind
 * (0 NULL, 1 int64, 2 bytes) and its payload (int: 8 bytes little-endian; bytes: u32 length
 * and the bytes), in the table's column order.
 *
 * Contract: encoders write into caller buffers sized by the *_len functions or a struct
 * tc_buf (growable, tc_buf_free). Decoders check every length against the bytes present and
 * return -1 on anything malformed, never reading past the input.
 */
#ifndef TISIM_TABLECODEC_H
#define TISIM_TABLECODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TC_ROW_KEY_LEN 19
#define TC_PREFIX_LEN 11 /* 't' | int(tableID) | "_r" or "_i" */

struct tc_buf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
};

void tc_buf_free(struct tc_buf *b);
void tc_put(struct tc_buf *b, const void *p, size_t n);

void tc_encode_int(uint8_t out[8], int64_t v);
int64_t tc_decode_int(const uint8_t in[8]);
void tc_row_key(uint8_t out[TC_ROW_KEY_LEN], int64_t table_id, int64_t handle);
/* 0 and *handle when key is a row key of table_id. */
int tc_row_key_handle(const uint8_t *key, size_t len, int64_t table_id, int64_t *handle);
/* 't' | int(tableID) | "_r": the prefix every row key of the table starts with; the end of
 * the table's rows is the same with "_s" ('r' + 1). */
void tc_row_prefix(uint8_t out[TC_PREFIX_LEN], int64_t table_id, bool end);
/* 't' | int(tableID) | "_i" | int(indexID) */
void tc_index_prefix(struct tc_buf *b, int64_t table_id, int64_t index_id);
void tc_datum_null(struct tc_buf *b);
void tc_datum_int(struct tc_buf *b, int64_t v);
void tc_datum_bytes(struct tc_buf *b, const void *p, size_t n);
/* Reads one datum at *p (advancing it): kind 0 NULL, 1 int, 2 bytes (*bytes malloc'd). */
int tc_datum_decode(const uint8_t **p, const uint8_t *end, int *kind, int64_t *i,
                    uint8_t **bytes, size_t *blen);

/* Row values. */
struct tc_value {
    int kind; /* 0 NULL, 1 int, 2 bytes */
    int64_t i;
    const uint8_t *s; /* bytes: points into the encoded row (decode) or the caller's data */
    size_t len;
};
void tc_row_encode(struct tc_buf *b, const struct tc_value *v, size_t n);
/* Fills out[0..max) (pointing into row); *n the column count. -1 when malformed or n > max. */
int tc_row_decode(const uint8_t *row, size_t len, struct tc_value *out, size_t max, size_t *n);

#endif
