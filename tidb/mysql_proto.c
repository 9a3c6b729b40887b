/* mysql_proto.c — the MySQL wire protocol on byte buffers (contract in mysql_proto.h). */
#include "mysql_proto.h"

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>
#include <mbedtls/sha1.h>

#define SHA1_LEN 20
#define HELLO_FIXED_LEN 32 /* caps, max packet, charset, 23 filler bytes */
#define HANDSHAKE_VERSION_MAX 250

static const char *const empty = "";

/* ---- tables --------------------------------------------------------------------------- */

static const struct {
    uint16_t code;
    const char *state;
} sqlstates[] = {
    {MYSQL_ER_DB_CREATE_EXISTS, "HY000"},
    {MYSQL_ER_DB_DROP_EXISTS, "HY000"},
    {MYSQL_ER_HANDSHAKE_ERROR, "08S01"},
    {MYSQL_ER_DBACCESS_DENIED_ERROR, "42000"},
    {MYSQL_ER_ACCESS_DENIED_ERROR, "28000"},
    {MYSQL_ER_NO_DB_ERROR, "3D000"},
    {MYSQL_ER_UNKNOWN_COM_ERROR, "08S01"},
    {MYSQL_ER_BAD_NULL_ERROR, "23000"},
    {MYSQL_ER_BAD_DB_ERROR, "42000"},
    {MYSQL_ER_TABLE_EXISTS_ERROR, "42S01"},
    {MYSQL_ER_BAD_TABLE_ERROR, "42S02"},
    {MYSQL_ER_BAD_FIELD_ERROR, "42S22"},
    {MYSQL_ER_WRONG_VALUE_COUNT, "21S01"},
    {MYSQL_ER_TOO_LONG_IDENT, "42000"},
    {MYSQL_ER_DUP_FIELDNAME, "42S21"},
    {MYSQL_ER_DUP_KEYNAME, "42000"},
    {MYSQL_ER_DUP_ENTRY, "23000"},
    {MYSQL_ER_PARSE_ERROR, "42000"},
    {MYSQL_ER_EMPTY_QUERY, "42000"},
    {MYSQL_ER_MULTIPLE_PRI_KEY, "42000"},
    {MYSQL_ER_KEY_COLUMN_DOES_NOT_EXITS, "42000"},
    {MYSQL_ER_WRONG_AUTO_KEY, "42000"},
    {MYSQL_ER_WRONG_DB_NAME, "42000"},
    {MYSQL_ER_WRONG_TABLE_NAME, "42000"},
    {MYSQL_ER_UNKNOWN_ERROR, "HY000"},
    {MYSQL_ER_FIELD_SPECIFIED_TWICE, "42000"},
    {MYSQL_ER_WRONG_VALUE_COUNT_ON_ROW, "21S01"},
    {MYSQL_ER_NO_SUCH_TABLE, "42S02"},
    {MYSQL_ER_NET_PACKET_TOO_LARGE, "08S01"},
    {MYSQL_ER_NET_PACKETS_OUT_OF_ORDER, "08S01"},
    {MYSQL_ER_UNKNOWN_SYSTEM_VARIABLE, "HY000"},
    {MYSQL_ER_SPECIFIC_ACCESS_DENIED_ERROR, "42000"},
    {MYSQL_ER_NOT_SUPPORTED_YET, "42000"},
    {MYSQL_ER_NOT_SUPPORTED_AUTH_MODE, "08004"},
    {MYSQL_ER_WARN_DATA_OUT_OF_RANGE, "22003"},
    {MYSQL_ER_NO_DEFAULT_FOR_FIELD, "HY000"},
    {MYSQL_ER_TRUNCATED_WRONG_VALUE_FOR_FIELD, "HY000"},
    {MYSQL_ER_CANNOT_USER, "HY000"},
    {MYSQL_ER_DATA_TOO_LONG, "22001"},
    {MYSQL_ER_SECURE_TRANSPORT_REQUIRED, "HY000"},
};

const char *mysql_sqlstate(uint16_t code)
{
    for (size_t i = 0; i < sizeof sqlstates / sizeof sqlstates[0]; i++)
        if (sqlstates[i].code == code)
            return sqlstates[i].state;
    return "HY000";
}

static const char *const command_names[] = {
    "COM_SLEEP",          "COM_QUIT",          "COM_INIT_DB",
    "COM_QUERY",          "COM_FIELD_LIST",    "COM_CREATE_DB",
    "COM_DROP_DB",        "COM_REFRESH",       "COM_SHUTDOWN",
    "COM_STATISTICS",     "COM_PROCESS_INFO",  "COM_CONNECT",
    "COM_PROCESS_KILL",   "COM_DEBUG",         "COM_PING",
    "COM_TIME",           "COM_DELAYED_INSERT", "COM_CHANGE_USER",
    "COM_BINLOG_DUMP",    "COM_TABLE_DUMP",    "COM_CONNECT_OUT",
    "COM_REGISTER_SLAVE", "COM_STMT_PREPARE",  "COM_STMT_EXECUTE",
    "COM_STMT_SEND_LONG_DATA", "COM_STMT_CLOSE", "COM_STMT_RESET",
    "COM_SET_OPTION",     "COM_STMT_FETCH",    "COM_DAEMON",
    "COM_BINLOG_DUMP_GTID", "COM_RESET_CONNECTION",
};

const char *mysql_command_name(uint8_t cmd, char *buf, size_t buflen)
{
    if (cmd < sizeof command_names / sizeof command_names[0])
        return command_names[cmd];
    if (!buf || buflen == 0)
        return "COM_UNKNOWN";
    int n = snprintf(buf, buflen, "COM_UNKNOWN(0x%02x)", cmd);
    if (n < 0 || (size_t)n >= buflen)
        return "COM_UNKNOWN";
    return buf;
}

/* ---- byte buffers --------------------------------------------------------------------- */

void mysql_buf_init(struct mysql_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void mysql_buf_free(struct mysql_buf *b)
{
    free(b->data);
    mysql_buf_init(b);
}

void mysql_buf_clear(struct mysql_buf *b)
{
    b->len = 0;
}

static int buf_reserve(struct mysql_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return -1;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int mysql_buf_append(struct mysql_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (buf_reserve(b, n) != 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static int put_le(struct mysql_buf *b, uint64_t v, int nbytes)
{
    uint8_t tmp[8];
    for (int i = 0; i < nbytes; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    return mysql_buf_append(b, tmp, (size_t)nbytes);
}

int mysql_put_u8(struct mysql_buf *b, uint8_t v)
{
    return mysql_buf_append(b, &v, 1);
}

int mysql_put_u16(struct mysql_buf *b, uint16_t v)
{
    return put_le(b, v, 2);
}

int mysql_put_u24(struct mysql_buf *b, uint32_t v)
{
    return put_le(b, v, 3);
}

int mysql_put_u32(struct mysql_buf *b, uint32_t v)
{
    return put_le(b, v, 4);
}

size_t mysql_lenenc_int_size(uint64_t v)
{
    if (v < 0xFB)
        return 1;
    if (v <= 0xFFFF)
        return 3;
    if (v <= 0xFFFFFF)
        return 4;
    return 9;
}

int mysql_put_lenenc_int(struct mysql_buf *b, uint64_t v)
{
    switch (mysql_lenenc_int_size(v)) {
    case 1:
        return mysql_put_u8(b, (uint8_t)v);
    case 3:
        return mysql_put_u8(b, 0xFC) | put_le(b, v, 2);
    case 4:
        return mysql_put_u8(b, 0xFD) | put_le(b, v, 3);
    default:
        return mysql_put_u8(b, 0xFE) | put_le(b, v, 8);
    }
}

int mysql_put_lenenc_str(struct mysql_buf *b, const void *s, size_t n)
{
    return mysql_put_lenenc_int(b, n) | mysql_buf_append(b, s, n);
}

static int put_cstr_nul(struct mysql_buf *b, const char *s)
{
    return mysql_buf_append(b, s, strlen(s) + 1);
}

/* ---- payload reader ------------------------------------------------------------------- */

void mysql_rd_init(struct mysql_rd *r, const void *p, size_t len)
{
    r->p = p;
    r->len = p ? len : 0;
    r->pos = 0;
}

size_t mysql_rd_left(const struct mysql_rd *r)
{
    return r->len - r->pos;
}

static int rd_le(struct mysql_rd *r, int nbytes, uint64_t *v)
{
    if (mysql_rd_left(r) < (size_t)nbytes)
        return -1;
    uint64_t x = 0;
    for (int i = 0; i < nbytes; i++)
        x |= (uint64_t)r->p[r->pos + (size_t)i] << (8 * i);
    r->pos += (size_t)nbytes;
    *v = x;
    return 0;
}

int mysql_rd_u8(struct mysql_rd *r, uint8_t *v)
{
    uint64_t x;
    if (rd_le(r, 1, &x) != 0)
        return -1;
    *v = (uint8_t)x;
    return 0;
}

int mysql_rd_u16(struct mysql_rd *r, uint16_t *v)
{
    uint64_t x;
    if (rd_le(r, 2, &x) != 0)
        return -1;
    *v = (uint16_t)x;
    return 0;
}

int mysql_rd_u24(struct mysql_rd *r, uint32_t *v)
{
    uint64_t x;
    if (rd_le(r, 3, &x) != 0)
        return -1;
    *v = (uint32_t)x;
    return 0;
}

int mysql_rd_u32(struct mysql_rd *r, uint32_t *v)
{
    uint64_t x;
    if (rd_le(r, 4, &x) != 0)
        return -1;
    *v = (uint32_t)x;
    return 0;
}

int mysql_rd_bytes(struct mysql_rd *r, size_t n, const uint8_t **out)
{
    if (mysql_rd_left(r) < n)
        return -1;
    *out = r->p + r->pos;
    r->pos += n;
    return 0;
}

int mysql_rd_lenenc_int(struct mysql_rd *r, uint64_t *v)
{
    size_t save = r->pos;
    uint8_t first;
    if (mysql_rd_u8(r, &first) != 0)
        return -1;
    if (first < 0xFB) {
        *v = first;
        return 0;
    }
    int nbytes = first == 0xFC ? 2 : first == 0xFD ? 3 : first == 0xFE ? 8 : 0;
    if (nbytes == 0 || rd_le(r, nbytes, v) != 0) {
        r->pos = save;
        return -1;
    }
    return 0;
}

int mysql_rd_lenenc_str(struct mysql_rd *r, const uint8_t **s, size_t *n)
{
    size_t save = r->pos;
    uint64_t len;
    if (mysql_rd_lenenc_int(r, &len) != 0)
        return -1;
    if (len > mysql_rd_left(r)) {
        r->pos = save;
        return -1;
    }
    *n = (size_t)len;
    return mysql_rd_bytes(r, (size_t)len, s);
}

int mysql_rd_nul_str(struct mysql_rd *r, const char **s, size_t *n)
{
    if (mysql_rd_left(r) == 0)
        return -1;
    const uint8_t *start = r->p + r->pos;
    const uint8_t *nul = memchr(start, 0, mysql_rd_left(r));
    if (!nul)
        return -1;
    *s = (const char *)start;
    *n = (size_t)(nul - start);
    r->pos += *n + 1;
    return 0;
}

int mysql_rd_row_value(struct mysql_rd *r, const uint8_t **s, size_t *n, bool *is_null)
{
    if (mysql_rd_left(r) > 0 && r->p[r->pos] == 0xFB) {
        r->pos++;
        *s = NULL;
        *n = 0;
        *is_null = true;
        return 0;
    }
    *is_null = false;
    return mysql_rd_lenenc_str(r, s, n);
}

/* ---- packet framing ------------------------------------------------------------------- */

int mysql_packet_begin(struct mysql_buf *b, size_t *start)
{
    static const uint8_t zero[MYSQL_PACKET_HEADER_LEN];
    *start = b->len;
    return mysql_buf_append(b, zero, sizeof zero);
}

static void put_header(uint8_t *p, size_t len, uint8_t seq)
{
    p[0] = (uint8_t)len;
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)(len >> 16);
    p[3] = seq;
}

/* Moves each 2^24-1-byte piece of the payload at start+4 right to make room for the
 * headers of the pieces after the first, last piece first. */
static int split_payload(struct mysql_buf *b, size_t start, size_t len, uint8_t *seq)
{
    size_t pieces = len / MYSQL_MAX_PACKET_CHUNK + 1;
    size_t extra = (pieces - 1) * MYSQL_PACKET_HEADER_LEN;
    if (buf_reserve(b, extra) != 0)
        return -1;
    uint8_t *base = b->data + start;
    for (size_t i = pieces; i-- > 0;) {
        size_t off = i * MYSQL_MAX_PACKET_CHUNK;
        size_t n = len - off < MYSQL_MAX_PACKET_CHUNK ? len - off : MYSQL_MAX_PACKET_CHUNK;
        uint8_t *hdr = base + i * (MYSQL_MAX_PACKET_CHUNK + MYSQL_PACKET_HEADER_LEN);
        memmove(hdr + MYSQL_PACKET_HEADER_LEN, base + MYSQL_PACKET_HEADER_LEN + off, n);
        put_header(hdr, n, (uint8_t)(*seq + i));
    }
    b->len += extra;
    *seq = (uint8_t)(*seq + pieces);
    return 0;
}

int mysql_packet_end(struct mysql_buf *b, size_t start, uint8_t *seq)
{
    if (start > b->len || b->len - start < MYSQL_PACKET_HEADER_LEN)
        return -1;
    size_t len = b->len - start - MYSQL_PACKET_HEADER_LEN;
    if (len < MYSQL_MAX_PACKET_CHUNK) {
        put_header(b->data + start, len, (*seq)++);
        return 0;
    }
    if (split_payload(b, start, len, seq) != 0) {
        b->len = start;
        return -1;
    }
    return 0;
}

int mysql_write_packet(struct mysql_buf *b, uint8_t *seq, const void *payload, size_t len)
{
    size_t start;
    if (mysql_packet_begin(b, &start) != 0)
        return -1;
    if (mysql_buf_append(b, payload, len) != 0) {
        b->len = start;
        return -1;
    }
    return mysql_packet_end(b, start, seq);
}

/* Copies the pieces of a multi-packet payload (already checked) into scratch. */
static int reassemble(const uint8_t *in, size_t consumed, struct mysql_buf *scratch)
{
    mysql_buf_clear(scratch);
    for (size_t pos = 0; pos < consumed;) {
        size_t n = (size_t)in[pos] | (size_t)in[pos + 1] << 8 | (size_t)in[pos + 2] << 16;
        if (mysql_buf_append(scratch, in + pos + MYSQL_PACKET_HEADER_LEN, n) != 0)
            return -1;
        pos += MYSQL_PACKET_HEADER_LEN + n;
    }
    return 0;
}

enum mysql_read_status mysql_packet_read(const uint8_t *in, size_t in_len, size_t max_payload,
                                         struct mysql_buf *scratch, struct mysql_packet *out,
                                         char *err, size_t errlen)
{
    size_t pos = 0, total = 0, pieces = 0;
    uint8_t first_seq = 0, last_seq = 0;
    for (;;) {
        if (in_len - pos < MYSQL_PACKET_HEADER_LEN)
            return MYSQL_READ_MORE;
        const uint8_t *h = in + pos;
        size_t n = (size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16;
        if (pieces == 0)
            first_seq = h[3];
        else if (h[3] != (uint8_t)(last_seq + 1)) {
            errorf(err, errlen, "packets out of order: sequence id %u after %u", h[3], last_seq);
            return MYSQL_READ_ERROR;
        }
        last_seq = h[3];
        total += n;
        if (total > max_payload) {
            errorf(err, errlen, "packet of %zu bytes or more is over the %zu-byte limit", total,
                 max_payload);
            return MYSQL_READ_ERROR;
        }
        if (in_len - pos - MYSQL_PACKET_HEADER_LEN < n)
            return MYSQL_READ_MORE;
        pos += MYSQL_PACKET_HEADER_LEN + n;
        pieces++;
        if (n < MYSQL_MAX_PACKET_CHUNK)
            break;
    }
    out->seq = first_seq;
    out->next_seq = (uint8_t)(last_seq + 1);
    out->consumed = pos;
    out->len = total;
    if (pieces == 1) {
        out->payload = in + MYSQL_PACKET_HEADER_LEN;
        return MYSQL_READ_PACKET;
    }
    if (reassemble(in, pos, scratch) != 0) {
        errorf(err, errlen, "out of memory reassembling a %zu-byte packet", total);
        return MYSQL_READ_ERROR;
    }
    out->payload = scratch->data;
    return MYSQL_READ_PACKET;
}

/* ---- connection phase ----------------------------------------------------------------- */

uint32_t mysql_server_caps(bool tls_available)
{
    uint32_t caps = MYSQL_CLIENT_LONG_PASSWORD | MYSQL_CLIENT_LONG_FLAG |
                    MYSQL_CLIENT_CONNECT_WITH_DB | MYSQL_CLIENT_PROTOCOL_41 |
                    MYSQL_CLIENT_TRANSACTIONS | MYSQL_CLIENT_SECURE_CONNECTION |
                    MYSQL_CLIENT_MULTI_RESULTS | MYSQL_CLIENT_PLUGIN_AUTH |
                    MYSQL_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;
    if (tls_available)
        caps |= MYSQL_CLIENT_SSL;
    return caps;
}

void mysql_scramble_make(const uint8_t random[MYSQL_SCRAMBLE_LEN],
                         uint8_t scramble[MYSQL_SCRAMBLE_LEN])
{
    for (int i = 0; i < MYSQL_SCRAMBLE_LEN; i++) {
        uint8_t c = random[i] & 0x7f;
        if (c == '\0' || c == '$')
            c++;
        scramble[i] = c;
    }
}

static int check_handshake(const struct mysql_handshake *hs, char *err, size_t errlen)
{
    uint32_t need = MYSQL_CLIENT_PROTOCOL_41 | MYSQL_CLIENT_SECURE_CONNECTION;
    if ((hs->caps & need) != need)
        return errorf(err, errlen, "handshake: caps 0x%08x lack PROTOCOL_41 or "
                    "SECURE_CONNECTION", hs->caps);
    if (memchr(hs->scramble, 0, MYSQL_SCRAMBLE_LEN))
        return errorf(err, errlen, "handshake: the scramble has a 0 byte "
                    "(make it with mysql_scramble_make)");
    if (strlen(hs->server_version) > HANDSHAKE_VERSION_MAX)
        return errorf(err, errlen, "handshake: server version over %d bytes",
                    HANDSHAKE_VERSION_MAX);
    return 0;
}

int mysql_write_handshake(struct mysql_buf *b, uint8_t *seq, const struct mysql_handshake *hs,
                          char *err, size_t errlen)
{
    static const uint8_t zeros[10];
    if (check_handshake(hs, err, errlen) != 0)
        return -1;
    bool plugin = (hs->caps & MYSQL_CLIENT_PLUGIN_AUTH) != 0;
    size_t start;
    if (mysql_packet_begin(b, &start) != 0)
        return errorf(err, errlen, "out of memory");
    int rc = mysql_put_u8(b, 10) | put_cstr_nul(b, hs->server_version) |
             mysql_put_u32(b, hs->conn_id) | mysql_buf_append(b, hs->scramble, 8) |
             mysql_put_u8(b, 0) | mysql_put_u16(b, (uint16_t)hs->caps) |
             mysql_put_u8(b, hs->charset) | mysql_put_u16(b, hs->status) |
             mysql_put_u16(b, (uint16_t)(hs->caps >> 16)) |
             mysql_put_u8(b, plugin ? MYSQL_SCRAMBLE_LEN + 1 : 0) |
             mysql_buf_append(b, zeros, sizeof zeros) |
             mysql_buf_append(b, hs->scramble + 8, MYSQL_SCRAMBLE_LEN - 8) | mysql_put_u8(b, 0);
    if (plugin)
        rc |= put_cstr_nul(b, hs->auth_plugin ? hs->auth_plugin : MYSQL_NATIVE_PLUGIN);
    if (rc != 0 || mysql_packet_end(b, start, seq) != 0) {
        b->len = start;
        return errorf(err, errlen, "out of memory");
    }
    return 0;
}

/* The fixed part after the version: id, scramble 1, filler, caps, charset, status... */
static int parse_handshake_fixed(struct mysql_rd *r, struct mysql_handshake *out,
                                 uint8_t *data_len)
{
    const uint8_t *part1, *reserved;
    uint8_t filler;
    uint16_t caps_lo, caps_hi;
    if (mysql_rd_u32(r, &out->conn_id) || mysql_rd_bytes(r, 8, &part1) ||
        mysql_rd_u8(r, &filler) || mysql_rd_u16(r, &caps_lo) ||
        mysql_rd_u8(r, &out->charset) || mysql_rd_u16(r, &out->status) ||
        mysql_rd_u16(r, &caps_hi) || mysql_rd_u8(r, data_len) ||
        mysql_rd_bytes(r, 10, &reserved))
        return -1;
    memcpy(out->scramble, part1, 8);
    out->caps = (uint32_t)caps_lo | (uint32_t)caps_hi << 16;
    return 0;
}

int mysql_parse_handshake(const uint8_t *p, size_t n, struct mysql_handshake *out, char *err,
                          size_t errlen)
{
    struct mysql_rd r;
    uint8_t proto, data_len;
    size_t vlen;
    const uint8_t *part2;
    mysql_rd_init(&r, p, n);
    memset(out, 0, sizeof *out);
    if (mysql_rd_u8(&r, &proto) != 0 || proto != 10)
        return errorf(err, errlen, "handshake: not protocol version 10");
    if (mysql_rd_nul_str(&r, &out->server_version, &vlen) != 0)
        return errorf(err, errlen, "handshake: server version is not NUL-terminated");
    if (parse_handshake_fixed(&r, out, &data_len) != 0)
        return errorf(err, errlen, "handshake: truncated after the server version");
    if (!(out->caps & MYSQL_CLIENT_SECURE_CONNECTION) ||
        (data_len != 0 && data_len != MYSQL_SCRAMBLE_LEN + 1))
        return errorf(err, errlen, "handshake: auth data of %u bytes is not a 20-byte scramble",
                    data_len);
    if (mysql_rd_bytes(&r, MYSQL_SCRAMBLE_LEN - 8 + 1, &part2) != 0 ||
        part2[MYSQL_SCRAMBLE_LEN - 8] != 0)
        return errorf(err, errlen, "handshake: truncated scramble");
    memcpy(out->scramble + 8, part2, MYSQL_SCRAMBLE_LEN - 8);
    out->auth_plugin = empty;
    if ((out->caps & MYSQL_CLIENT_PLUGIN_AUTH) &&
        mysql_rd_nul_str(&r, &out->auth_plugin, &vlen) != 0)
        return errorf(err, errlen, "handshake: auth plugin name is not NUL-terminated");
    return 0;
}

/* Connect attributes: a length-encoded total, then key/value length-encoded strings
 * filling it exactly. */
static int skip_attrs(struct mysql_rd *r, size_t *attrs_len, char *err, size_t errlen)
{
    uint64_t total;
    const uint8_t *blob, *s;
    size_t n;
    if (mysql_rd_lenenc_int(r, &total) != 0)
        return errorf(err, errlen, "handshake response: bad connect attributes length");
    if (total > mysql_rd_left(r) || mysql_rd_bytes(r, (size_t)total, &blob) != 0)
        return errorf(err, errlen, "handshake response: connect attributes of %llu bytes run "
                    "past the packet", (unsigned long long)total);
    struct mysql_rd a;
    mysql_rd_init(&a, blob, (size_t)total);
    while (mysql_rd_left(&a) > 0)
        if (mysql_rd_lenenc_str(&a, &s, &n) != 0 || mysql_rd_lenenc_str(&a, &s, &n) != 0)
            return errorf(err, errlen, "handshake response: malformed connect attribute");
    *attrs_len = (size_t)total;
    return 0;
}

static int read_auth(struct mysql_rd *r, struct mysql_client_hello *h, char *err,
                     size_t errlen)
{
    if (h->caps & MYSQL_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
        if (mysql_rd_lenenc_str(r, &h->auth, &h->auth_len) == 0)
            return 0;
    } else if (h->caps & MYSQL_CLIENT_SECURE_CONNECTION) {
        uint8_t n;
        if (mysql_rd_u8(r, &n) == 0 && mysql_rd_bytes(r, n, &h->auth) == 0) {
            h->auth_len = n;
            return 0;
        }
    } else {
        const char *s;
        if (mysql_rd_nul_str(r, &s, &h->auth_len) == 0) {
            h->auth = (const uint8_t *)s;
            return 0;
        }
    }
    return errorf(err, errlen, "handshake response: auth response runs past the packet");
}

static int read_names(struct mysql_rd *r, struct mysql_client_hello *h, char *err,
                      size_t errlen)
{
    if (mysql_rd_nul_str(r, &h->user, &h->user_len) != 0)
        return errorf(err, errlen, "handshake response: user name is not NUL-terminated");
    if (h->user_len > MYSQL_USER_MAX)
        return errorf(err, errlen, "handshake response: user name of %zu bytes is over %d",
                    h->user_len, MYSQL_USER_MAX);
    if (read_auth(r, h, err, errlen) != 0)
        return -1;
    if (h->has_db && mysql_rd_nul_str(r, &h->db, &h->db_len) != 0)
        return errorf(err, errlen, "handshake response: database name is not NUL-terminated");
    if (h->db_len > MYSQL_DB_MAX)
        return errorf(err, errlen, "handshake response: database name of %zu bytes is over %d",
                    h->db_len, MYSQL_DB_MAX);
    if ((h->caps & MYSQL_CLIENT_PLUGIN_AUTH) && mysql_rd_left(r) > 0 &&
        mysql_rd_nul_str(r, &h->plugin, &h->plugin_len) != 0)
        return errorf(err, errlen, "handshake response: auth plugin name is not NUL-terminated");
    if (h->plugin_len > MYSQL_PLUGIN_MAX)
        return errorf(err, errlen, "handshake response: auth plugin name of %zu bytes is over "
                    "%d", h->plugin_len, MYSQL_PLUGIN_MAX);
    return 0;
}

int mysql_parse_client_hello(const uint8_t *p, size_t n, struct mysql_client_hello *out,
                             char *err, size_t errlen)
{
    struct mysql_rd r;
    const uint8_t *filler;
    memset(out, 0, sizeof *out);
    out->user = out->db = out->plugin = empty;
    mysql_rd_init(&r, p, n);
    if (n < HELLO_FIXED_LEN)
        return errorf(err, errlen, "handshake response of %zu bytes is shorter than %d", n,
                    HELLO_FIXED_LEN);
    if (mysql_rd_u32(&r, &out->caps) || mysql_rd_u32(&r, &out->max_packet) ||
        mysql_rd_u8(&r, &out->charset) || mysql_rd_bytes(&r, 23, &filler))
        return errorf(err, errlen, "handshake response: truncated");
    if (!(out->caps & MYSQL_CLIENT_PROTOCOL_41))
        return errorf(err, errlen, "handshake response without CLIENT_PROTOCOL_41 (pre-4.1 "
                    "clients are not supported)");
    if (n == MYSQL_SSL_REQUEST_LEN) {
        if (!(out->caps & MYSQL_CLIENT_SSL))
            return errorf(err, errlen, "32-byte handshake response without CLIENT_SSL is "
                        "neither an SSLRequest nor a HandshakeResponse41");
        out->ssl_request = true;
        return 0;
    }
    out->has_db = (out->caps & MYSQL_CLIENT_CONNECT_WITH_DB) != 0;
    if (read_names(&r, out, err, errlen) != 0)
        return -1;
    if ((out->caps & MYSQL_CLIENT_CONNECT_ATTRS) && mysql_rd_left(&r) > 0 &&
        skip_attrs(&r, &out->attrs_len, err, errlen) != 0)
        return -1;
    return 0;
}

static int put_hello_fixed(struct mysql_buf *b, uint32_t caps, uint32_t max_packet,
                           uint8_t charset)
{
    static const uint8_t filler[23];
    return mysql_put_u32(b, caps) | mysql_put_u32(b, max_packet) | mysql_put_u8(b, charset) |
           mysql_buf_append(b, filler, sizeof filler);
}

int mysql_write_ssl_request(struct mysql_buf *b, uint8_t *seq, uint32_t caps,
                            uint32_t max_packet, uint8_t charset)
{
    size_t start;
    if (!(caps & MYSQL_CLIENT_SSL) || mysql_packet_begin(b, &start) != 0)
        return -1;
    if (put_hello_fixed(b, caps, max_packet, charset) != 0 ||
        mysql_packet_end(b, start, seq) != 0) {
        b->len = start;
        return -1;
    }
    return 0;
}

static int put_auth(struct mysql_buf *b, uint32_t caps, const uint8_t *auth, size_t len)
{
    if (caps & MYSQL_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)
        return mysql_put_lenenc_str(b, auth, len);
    if (len > 255)
        return -1;
    return mysql_put_u8(b, (uint8_t)len) | mysql_buf_append(b, auth, len);
}

int mysql_write_handshake_response(struct mysql_buf *b, uint8_t *seq,
                                   const struct mysql_client_hello *h)
{
    uint32_t caps = h->caps & ~MYSQL_CLIENT_CONNECT_ATTRS;
    size_t start;
    if (!(caps & MYSQL_CLIENT_SECURE_CONNECTION) || mysql_packet_begin(b, &start) != 0)
        return -1;
    int rc = put_hello_fixed(b, caps, h->max_packet, h->charset) |
             mysql_buf_append(b, h->user, h->user_len) | mysql_put_u8(b, 0) |
             put_auth(b, caps, h->auth, h->auth_len);
    if (caps & MYSQL_CLIENT_CONNECT_WITH_DB)
        rc |= mysql_buf_append(b, h->db, h->db_len) | mysql_put_u8(b, 0);
    if (caps & MYSQL_CLIENT_PLUGIN_AUTH)
        rc |= mysql_buf_append(b, h->plugin, h->plugin_len) | mysql_put_u8(b, 0);
    if (rc != 0 || mysql_packet_end(b, start, seq) != 0) {
        b->len = start;
        return -1;
    }
    return 0;
}

/* ---- mysql_native_password ------------------------------------------------------------ */

static int sha1_two(const uint8_t *a, size_t alen, const uint8_t *c, size_t clen,
                    uint8_t out[SHA1_LEN])
{
    mbedtls_sha1_context ctx;
    mbedtls_sha1_init(&ctx);
    int rc = mbedtls_sha1_starts_ret(&ctx);
    if (rc == 0)
        rc = mbedtls_sha1_update_ret(&ctx, a, alen);
    if (rc == 0 && clen > 0)
        rc = mbedtls_sha1_update_ret(&ctx, c, clen);
    if (rc == 0)
        rc = mbedtls_sha1_finish_ret(&ctx, out);
    mbedtls_sha1_free(&ctx);
    return rc == 0 ? 0 : -1;
}

/* stage1 = SHA1(password), stage2 = SHA1(stage1). */
static int native_stages(const char *password, size_t len, uint8_t stage1[SHA1_LEN],
                         uint8_t stage2[SHA1_LEN])
{
    if (sha1_two((const uint8_t *)password, len, NULL, 0, stage1) != 0)
        return -1;
    return sha1_two(stage1, SHA1_LEN, NULL, 0, stage2);
}

int mysql_native_password_hash(const char *password, size_t len,
                               char out[MYSQL_NATIVE_HASH_LEN + 1])
{
    static const char hex[] = "0123456789ABCDEF";
    uint8_t stage1[SHA1_LEN], stage2[SHA1_LEN];
    out[0] = '\0';
    if (len == 0)
        return 0;
    int rc = native_stages(password, len, stage1, stage2);
    mbedtls_platform_zeroize(stage1, sizeof stage1);
    if (rc != 0)
        return -1;
    out[0] = '*';
    for (int i = 0; i < SHA1_LEN; i++) {
        out[1 + 2 * i] = hex[stage2[i] >> 4];
        out[2 + 2 * i] = hex[stage2[i] & 15];
    }
    out[MYSQL_NATIVE_HASH_LEN] = '\0';
    return 0;
}

int mysql_native_password_scramble(const char *password, size_t len,
                                   const uint8_t scramble[MYSQL_SCRAMBLE_LEN],
                                   uint8_t out[MYSQL_SCRAMBLE_LEN], size_t *out_len)
{
    uint8_t stage1[SHA1_LEN], stage2[SHA1_LEN], h[SHA1_LEN];
    *out_len = 0;
    if (len == 0)
        return 0;
    int rc = native_stages(password, len, stage1, stage2);
    if (rc == 0)
        rc = sha1_two(scramble, MYSQL_SCRAMBLE_LEN, stage2, SHA1_LEN, h);
    if (rc == 0) {
        for (int i = 0; i < SHA1_LEN; i++)
            out[i] = stage1[i] ^ h[i];
        *out_len = SHA1_LEN;
    }
    mbedtls_platform_zeroize(stage1, sizeof stage1);
    return rc;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The SHA1(SHA1(password)) a "*HEX" stored form holds; -1 when it is not one. */
static int decode_stored(const char *stored, uint8_t stage2[SHA1_LEN])
{
    if (strlen(stored) != MYSQL_NATIVE_HASH_LEN || stored[0] != '*')
        return -1;
    for (int i = 0; i < SHA1_LEN; i++) {
        int hi = hex_value(stored[1 + 2 * i]), lo = hex_value(stored[2 + 2 * i]);
        if (hi < 0 || lo < 0)
            return -1;
        stage2[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

bool mysql_native_password_verify(const uint8_t scramble[MYSQL_SCRAMBLE_LEN],
                                  const uint8_t *resp, size_t resp_len, const char *stored)
{
    uint8_t stage2[SHA1_LEN], h[SHA1_LEN], cand[SHA1_LEN], check[SHA1_LEN];
    if (!stored || stored[0] == '\0')
        return stored != NULL && resp_len == 0;
    if (resp_len != SHA1_LEN || decode_stored(stored, stage2) != 0)
        return false;
    if (sha1_two(scramble, MYSQL_SCRAMBLE_LEN, stage2, SHA1_LEN, h) != 0)
        return false;
    for (int i = 0; i < SHA1_LEN; i++)
        cand[i] = resp[i] ^ h[i];
    if (sha1_two(cand, SHA1_LEN, NULL, 0, check) != 0)
        return false;
    uint8_t diff = 0;
    for (int i = 0; i < SHA1_LEN; i++)
        diff |= check[i] ^ stage2[i];
    mbedtls_platform_zeroize(cand, sizeof cand);
    return diff == 0;
}

/* ---- responses ------------------------------------------------------------------------ */

static int write_ok_header(struct mysql_buf *b, uint8_t *seq, uint8_t header,
                           uint64_t affected, uint64_t last_id, uint16_t status,
                           uint16_t warnings, const char *info)
{
    size_t start;
    if (mysql_packet_begin(b, &start) != 0)
        return -1;
    int rc = mysql_put_u8(b, header) | mysql_put_lenenc_int(b, affected) |
             mysql_put_lenenc_int(b, last_id) | mysql_put_u16(b, status) |
             mysql_put_u16(b, warnings);
    if (info && *info) /* length-encoded: what libmariadb and libmysqlclient both read */
        rc |= mysql_put_lenenc_str(b, info, strlen(info));
    if (rc != 0 || mysql_packet_end(b, start, seq) != 0) {
        b->len = start;
        return -1;
    }
    return 0;
}

int mysql_write_ok(struct mysql_buf *b, uint8_t *seq, uint64_t affected, uint64_t last_id,
                   uint16_t status, uint16_t warnings, const char *info)
{
    return write_ok_header(b, seq, 0x00, affected, last_id, status, warnings, info);
}

int mysql_write_ok_eof(struct mysql_buf *b, uint8_t *seq, uint64_t affected,
                       uint64_t last_id, uint16_t status, uint16_t warnings)
{
    return write_ok_header(b, seq, 0xFE, affected, last_id, status, warnings, NULL);
}

int mysql_write_err_state(struct mysql_buf *b, uint8_t *seq, uint16_t code,
                          const char *sqlstate, const char *msg)
{
    if (!sqlstate || strlen(sqlstate) != 5)
        sqlstate = "HY000";
    size_t mlen = msg ? strlen(msg) : 0;
    if (mlen > MYSQL_ERRMSG_MAX)
        mlen = MYSQL_ERRMSG_MAX;
    size_t start;
    if (mysql_packet_begin(b, &start) != 0)
        return -1;
    int rc = mysql_put_u8(b, 0xFF) | mysql_put_u16(b, code) | mysql_put_u8(b, '#') |
             mysql_buf_append(b, sqlstate, 5) | mysql_buf_append(b, msg, mlen);
    if (rc != 0 || mysql_packet_end(b, start, seq) != 0) {
        b->len = start;
        return -1;
    }
    return 0;
}

int mysql_write_err(struct mysql_buf *b, uint8_t *seq, uint16_t code, const char *msg)
{
    return mysql_write_err_state(b, seq, code, mysql_sqlstate(code), msg);
}

int mysql_write_eof(struct mysql_buf *b, uint8_t *seq, uint16_t warnings, uint16_t status)
{
    uint8_t p[5] = {0xFE, (uint8_t)warnings, (uint8_t)(warnings >> 8), (uint8_t)status,
                    (uint8_t)(status >> 8)};
    return mysql_write_packet(b, seq, p, sizeof p);
}

int mysql_parse_ok(const uint8_t *p, size_t n, struct mysql_ok *out)
{
    struct mysql_rd r;
    uint8_t header;
    mysql_rd_init(&r, p, n);
    if (mysql_rd_u8(&r, &header) != 0 || (header != 0x00 && header != 0xFE))
        return -1;
    if (mysql_rd_lenenc_int(&r, &out->affected) || mysql_rd_lenenc_int(&r, &out->last_id) ||
        mysql_rd_u16(&r, &out->status) || mysql_rd_u16(&r, &out->warnings))
        return -1;
    out->info = NULL;
    out->info_len = 0;
    if (mysql_rd_left(&r) > 0) {
        const uint8_t *s;
        size_t len;
        if (mysql_rd_lenenc_str(&r, &s, &len) != 0)
            return -1;
        out->info = s;
        out->info_len = len;
    }
    return 0;
}

int mysql_parse_err(const uint8_t *p, size_t n, struct mysql_err *out)
{
    struct mysql_rd r;
    uint8_t header, marker;
    const uint8_t *state;
    mysql_rd_init(&r, p, n);
    if (mysql_rd_u8(&r, &header) != 0 || header != 0xFF || mysql_rd_u16(&r, &out->code) ||
        mysql_rd_u8(&r, &marker) || marker != '#' || mysql_rd_bytes(&r, 5, &state))
        return -1;
    memcpy(out->sqlstate, state, 5);
    out->sqlstate[5] = '\0';
    out->msg_len = mysql_rd_left(&r);
    out->msg = p + r.pos;
    return 0;
}

/* ---- text result sets ----------------------------------------------------------------- */

void mysql_column_init(struct mysql_column *c, const char *name, uint8_t type)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    c->type = type;
    c->charset = MYSQL_CHARSET_BINARY;
    c->flags = MYSQL_BINARY_FLAG;
    switch (type) {
    case MYSQL_TYPE_TINY:
        c->length = 4;
        break;
    case MYSQL_TYPE_SHORT:
        c->length = 6;
        break;
    case MYSQL_TYPE_INT24:
        c->length = 9;
        break;
    case MYSQL_TYPE_LONG:
        c->length = 11;
        break;
    case MYSQL_TYPE_LONGLONG:
        c->length = 20;
        break;
    default:
        c->charset = MYSQL_CHARSET_UTF8MB4_GENERAL_CI;
        c->flags = 0;
        c->length = 1020;
    }
}

int mysql_write_column_count(struct mysql_buf *b, uint8_t *seq, uint64_t n)
{
    size_t start;
    if (mysql_packet_begin(b, &start) != 0)
        return -1;
    if (mysql_put_lenenc_int(b, n) != 0 || mysql_packet_end(b, start, seq) != 0) {
        b->len = start;
        return -1;
    }
    return 0;
}

static int put_name(struct mysql_buf *b, const char *s, const char *fallback)
{
    const char *v = s ? s : fallback ? fallback : "";
    return mysql_put_lenenc_str(b, v, strlen(v));
}

int mysql_write_column_def(struct mysql_buf *b, uint8_t *seq, const struct mysql_column *c)
{
    size_t start;
    if (mysql_packet_begin(b, &start) != 0)
        return -1;
    int rc = put_name(b, "def", NULL) | put_name(b, c->schema, NULL) |
             put_name(b, c->table, NULL) | put_name(b, c->org_table, c->table) |
             put_name(b, c->name, NULL) | put_name(b, c->org_name, c->name) |
             mysql_put_u8(b, 0x0c) | mysql_put_u16(b, c->charset) |
             mysql_put_u32(b, c->length) | mysql_put_u8(b, c->type) |
             mysql_put_u16(b, c->flags) | mysql_put_u8(b, c->decimals) | mysql_put_u16(b, 0);
    if (rc != 0 || mysql_packet_end(b, start, seq) != 0) {
        b->len = start;
        return -1;
    }
    return 0;
}

int mysql_write_row(struct mysql_buf *b, uint8_t *seq, const char *const *vals,
                    const size_t *lens, size_t n)
{
    size_t start;
    if (mysql_packet_begin(b, &start) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!vals[i])
            rc = mysql_put_u8(b, 0xFB);
        else
            rc = mysql_put_lenenc_str(b, vals[i], lens ? lens[i] : strlen(vals[i]));
    }
    if (rc != 0 || mysql_packet_end(b, start, seq) != 0) {
        b->len = start;
        return -1;
    }
    return 0;
}

int mysql_write_resultset(struct mysql_buf *b, uint8_t *seq, const struct mysql_column *cols,
                          size_t ncols, const char *const *cells, const size_t *lens,
                          size_t nrows, uint16_t status)
{
    size_t start = b->len;
    uint8_t s = *seq;
    int rc = mysql_write_column_count(b, &s, ncols);
    for (size_t i = 0; i < ncols && rc == 0; i++)
        rc = mysql_write_column_def(b, &s, &cols[i]);
    if (rc == 0)
        rc = mysql_write_eof(b, &s, 0, status);
    for (size_t r = 0; r < nrows && rc == 0; r++)
        rc = mysql_write_row(b, &s, cells + r * ncols, lens ? lens + r * ncols : NULL, ncols);
    if (rc == 0)
        rc = mysql_write_eof(b, &s, 0, status);
    if (rc != 0) {
        b->len = start;
        return -1;
    }
    *seq = s;
    return 0;
}
