/* tablecodec.c — TiDB's key layout and tisim's row values. See tablecodec.h. */
#include "tablecodec.h"

#include <stdlib.h>
#include <string.h>

#include "bytes.h"

#define FLAG_NULL 0x00
#define FLAG_BYTES 0x01
#define FLAG_INT 0x03
#define GROUP 8
#define MARKER 0xFF

void tc_buf_free(struct tc_buf *b)
{
    free(b->p);
    *b = (struct tc_buf){0};
}

void tc_put(struct tc_buf *b, const void *p, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

void tc_encode_int(uint8_t out[8], int64_t v)
{
    bytes_put_be64(out, (uint64_t)v ^ 0x8000000000000000ull);
}

int64_t tc_decode_int(const uint8_t in[8])
{
    return (int64_t)(bytes_get_be64(in) ^ 0x8000000000000000ull);
}

static void prefix(uint8_t *out, int64_t table_id, char kind)
{
    out[0] = 't';
    tc_encode_int(out + 1, table_id);
    out[9] = '_';
    out[10] = (uint8_t)kind;
}

void tc_row_key(uint8_t out[TC_ROW_KEY_LEN], int64_t table_id, int64_t handle)
{
    prefix(out, table_id, 'r');
    tc_encode_int(out + TC_PREFIX_LEN, handle);
}

int tc_row_key_handle(const uint8_t *key, size_t len, int64_t table_id, int64_t *handle)
{
    uint8_t want[TC_PREFIX_LEN];
    prefix(want, table_id, 'r');
    if (len != TC_ROW_KEY_LEN || memcmp(key, want, TC_PREFIX_LEN) != 0)
        return -1;
    *handle = tc_decode_int(key + TC_PREFIX_LEN);
    return 0;
}

void tc_row_prefix(uint8_t out[TC_PREFIX_LEN], int64_t table_id, bool end)
{
    prefix(out, table_id, end ? 's' : 'r');
}

void tc_index_prefix(struct tc_buf *b, int64_t table_id, int64_t index_id)
{
    uint8_t p[TC_PREFIX_LEN + 8];
    prefix(p, table_id, 'i');
    tc_encode_int(p + TC_PREFIX_LEN, index_id);
    tc_put(b, p, sizeof p);
}

void tc_datum_null(struct tc_buf *b)
{
    uint8_t f = FLAG_NULL;
    tc_put(b, &f, 1);
}

void tc_datum_int(struct tc_buf *b, int64_t v)
{
    uint8_t d[9] = {FLAG_INT};
    tc_encode_int(d + 1, v);
    tc_put(b, d, sizeof d);
}

void tc_datum_bytes(struct tc_buf *b, const void *p, size_t n)
{
    const uint8_t *s = p;
    uint8_t f = FLAG_BYTES;
    tc_put(b, &f, 1);
    for (size_t i = 0; i <= n; i += GROUP) {
        uint8_t g[GROUP + 1] = {0};
        size_t k = n - i < GROUP ? n - i : GROUP;
        if (k)
            memcpy(g, s + i, k);
        g[GROUP] = (uint8_t)(MARKER - (GROUP - k));
        tc_put(b, g, sizeof g);
        if (k < GROUP)
            break;
    }
}

static int decode_bytes(const uint8_t **p, const uint8_t *end, uint8_t **out, size_t *len)
{
    struct tc_buf b = {0};
    for (;;) {
        if (end - *p < GROUP + 1) {
            tc_buf_free(&b);
            return -1;
        }
        uint8_t marker = (*p)[GROUP];
        size_t pad = MARKER - marker;
        if (pad > GROUP) {
            tc_buf_free(&b);
            return -1;
        }
        tc_put(&b, *p, GROUP - pad);
        *p += GROUP + 1;
        if (pad)
            break;
    }
    tc_put(&b, "", 0);
    if (b.oom || (!b.p && !(b.p = malloc(1)))) {
        tc_buf_free(&b);
        return -1;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

int tc_datum_decode(const uint8_t **p, const uint8_t *end, int *kind, int64_t *i,
                    uint8_t **bytes, size_t *blen)
{
    if (*p >= end)
        return -1;
    uint8_t f = *(*p)++;
    if (f == FLAG_NULL) {
        *kind = 0;
        return 0;
    }
    if (f == FLAG_INT) {
        if (end - *p < 8)
            return -1;
        *kind = 1;
        *i = tc_decode_int(*p);
        *p += 8;
        return 0;
    }
    if (f == FLAG_BYTES) {
        *kind = 2;
        return decode_bytes(p, end, bytes, blen);
    }
    return -1;
}

void tc_row_encode(struct tc_buf *b, const struct tc_value *v, size_t n)
{
    uint8_t h[2];
    h[0] = (uint8_t)(n & 0xff);
    h[1] = (uint8_t)(n >> 8);
    tc_put(b, h, 2);
    for (size_t c = 0; c < n; c++) {
        uint8_t k = (uint8_t)v[c].kind, x[8];
        tc_put(b, &k, 1);
        if (v[c].kind == 1) {
            bytes_put_le64(x, (uint64_t)v[c].i);
            tc_put(b, x, 8);
        } else if (v[c].kind == 2) {
            bytes_put_le32(x, (uint32_t)v[c].len);
            tc_put(b, x, 4);
            tc_put(b, v[c].s, v[c].len);
        }
    }
}

int tc_row_decode(const uint8_t *row, size_t len, struct tc_value *out, size_t max, size_t *n)
{
    if (len < 2)
        return -1;
    size_t count = (size_t)row[0] | (size_t)row[1] << 8, at = 2;
    if (count > max)
        return -1;
    for (size_t c = 0; c < count; c++) {
        if (at >= len)
            return -1;
        struct tc_value *v = &out[c];
        *v = (struct tc_value){.kind = row[at++]};
        if (v->kind == 1) {
            if (len - at < 8)
                return -1;
            v->i = (int64_t)bytes_get_le64(row + at);
            at += 8;
        } else if (v->kind == 2) {
            if (len - at < 4)
                return -1;
            v->len = bytes_get_le32(row + at);
            at += 4;
            if (len - at < v->len)
                return -1;
            v->s = row + at;
            at += v->len;
        } else if (v->kind != 0) {
            return -1;
        }
    }
    *n = count;
    return at == len ? 0 : -1;
}
