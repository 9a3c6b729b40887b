/* mysql_proto.h — the MySQL client/server wire protocol as pure functions on byte buffers.
 *
 * What it covers (MySQL's documented formats; the reference client is libmariadb):
 * packet framing, length-encoded integers and strings, the server's Initial Handshake v10,
 * the client's SSLRequest and HandshakeResponse41, mysql_native_password, OK / ERR / EOF
 * packets, ColumnDefinition41 and text result sets; command bytes, capability and status
 * flags, error codes with their SQLSTATEs. A few client-side helpers (building an SSLRequest
 * or a HandshakeResponse41, reading a handshake, OK or ERR) exist so tests and tools can
 * talk to the server with the same code.
 *
 * Contract:
 * - No I/O, no libevent, no globals: every function works on memory the caller passes.
 *   Thread-safe as long as callers do not share a buffer.
 * - Output goes into a growable byte buffer (struct mysql_buf), chosen over an evbuffer so
 *   the module stays free of libevent and a worker thread can build a whole reply (a result
 *   set is many packets) in one place; the caller hands b->data/b->len to its transport
 *   (evbuffer_add) in one call. Every writer appends whole packets: on failure (-1: out of
 *   memory, or an argument it names in err) the buffer is left exactly as it was.
 * - Sequence ids: every packet writer takes `uint8_t *seq`, stamps the packet with it and
 *   advances it (mod 256), also across the pieces of a split packet. A reply to a command
 *   starts at the command's next_seq (struct mysql_packet).
 * - Framing: a payload of 2^24-1 bytes or more is sent as several packets of 2^24-1 bytes
 *   and a last shorter one (possibly empty); mysql_packet_read reassembles them. The reader
 *   never reads past the bytes it is given and refuses a declared total over the caller's
 *   limit as soon as the header shows it (the connection cannot go on: close it).
 * - Readers (struct mysql_rd and the mysql_parse_* functions) never read outside the
 *   payload: a truncated or malformed value is an error with one line in err, never a crash.
 *   Strings they return point into the payload they were given (user, database and plugin
 *   names are NUL-terminated there), so they live as long as that payload.
 * - Server side: the server advertises CLIENT_PROTOCOL_41, CLIENT_SECURE_CONNECTION,
 *   CLIENT_PLUGIN_AUTH (+ LENENC client data), CLIENT_CONNECT_WITH_DB, CLIENT_LONG_PASSWORD,
 *   CLIENT_LONG_FLAG, CLIENT_TRANSACTIONS, CLIENT_MULTI_RESULTS, and CLIENT_SSL only when
 *   TLS is configured (mysql_server_caps). It does NOT advertise CLIENT_DEPRECATE_EOF
 *   (result sets use classic EOF packets; mysql_write_ok_eof exists for a server that does)
 *   nor CLIENT_SESSION_TRACK (an OK packet's info is still a length-encoded string: the
 *   protocol documents string<EOF> here, but libmariadb and libmysqlclient both read a
 *   length-encoded one, as MySQL and TiDB send it; a mariadb client shows "malformed packet"
 *   otherwise) nor
 *   CLIENT_CONNECT_ATTRS (attributes a client sends anyway are skipped, checked for shape).
 *   Clients must speak protocol 4.1: a HandshakeResponse320 is refused.
 * - mysql_native_password: the stored form is "*" + 40 upper-case hex digits of
 *   SHA1(SHA1(password)), what MySQL's PASSWORD() gives; an empty password is stored as "".
 *   Verification compares in constant time. SHA-1 is mbedTLS's.
 */
#ifndef TISIM_MYSQL_PROTO_H
#define TISIM_MYSQL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- constants ------------------------------------------------------------------------ */

#define MYSQL_PACKET_HEADER_LEN 4
#define MYSQL_MAX_PACKET_CHUNK 0xFFFFFFu     /* payload bytes in one physical packet */
#define MYSQL_MAX_COMMAND_DEFAULT (16u << 20) /* a sensible mysql_packet_read limit */
#define MYSQL_SCRAMBLE_LEN 20
#define MYSQL_NATIVE_HASH_LEN 41 /* "*" + 40 hex digits */
#define MYSQL_NATIVE_PLUGIN "mysql_native_password"
#define MYSQL_SERVER_VERSION "8.0.11-TiDB-tisim"
#define MYSQL_SSL_REQUEST_LEN 32
#define MYSQL_USER_MAX 128    /* bytes of a user name in a HandshakeResponse41 */
#define MYSQL_DB_MAX 256      /* bytes of a database name */
#define MYSQL_PLUGIN_MAX 64   /* bytes of an auth plugin name */
#define MYSQL_ERRMSG_MAX 512  /* bytes of an ERR packet's message (longer ones are cut) */

/* Commands: the first byte of a command packet. */
enum {
    MYSQL_COM_SLEEP = 0x00,
    MYSQL_COM_QUIT = 0x01,
    MYSQL_COM_INIT_DB = 0x02,
    MYSQL_COM_QUERY = 0x03,
    MYSQL_COM_FIELD_LIST = 0x04,
    MYSQL_COM_CREATE_DB = 0x05,
    MYSQL_COM_DROP_DB = 0x06,
    MYSQL_COM_REFRESH = 0x07,
    MYSQL_COM_SHUTDOWN = 0x08,
    MYSQL_COM_STATISTICS = 0x09,
    MYSQL_COM_PROCESS_INFO = 0x0a,
    MYSQL_COM_CONNECT = 0x0b,
    MYSQL_COM_PROCESS_KILL = 0x0c,
    MYSQL_COM_DEBUG = 0x0d,
    MYSQL_COM_PING = 0x0e,
    MYSQL_COM_TIME = 0x0f,
    MYSQL_COM_DELAYED_INSERT = 0x10,
    MYSQL_COM_CHANGE_USER = 0x11,
    MYSQL_COM_BINLOG_DUMP = 0x12,
    MYSQL_COM_TABLE_DUMP = 0x13,
    MYSQL_COM_CONNECT_OUT = 0x14,
    MYSQL_COM_REGISTER_SLAVE = 0x15,
    MYSQL_COM_STMT_PREPARE = 0x16,
    MYSQL_COM_STMT_EXECUTE = 0x17,
    MYSQL_COM_STMT_SEND_LONG_DATA = 0x18,
    MYSQL_COM_STMT_CLOSE = 0x19,
    MYSQL_COM_STMT_RESET = 0x1a,
    MYSQL_COM_SET_OPTION = 0x1b,
    MYSQL_COM_STMT_FETCH = 0x1c,
    MYSQL_COM_DAEMON = 0x1d,
    MYSQL_COM_BINLOG_DUMP_GTID = 0x1e,
    MYSQL_COM_RESET_CONNECTION = 0x1f,
};

/* Capability flags (32 bits). */
#define MYSQL_CLIENT_LONG_PASSWORD 0x00000001u
#define MYSQL_CLIENT_FOUND_ROWS 0x00000002u
#define MYSQL_CLIENT_LONG_FLAG 0x00000004u
#define MYSQL_CLIENT_CONNECT_WITH_DB 0x00000008u
#define MYSQL_CLIENT_NO_SCHEMA 0x00000010u
#define MYSQL_CLIENT_COMPRESS 0x00000020u
#define MYSQL_CLIENT_ODBC 0x00000040u
#define MYSQL_CLIENT_LOCAL_FILES 0x00000080u
#define MYSQL_CLIENT_IGNORE_SPACE 0x00000100u
#define MYSQL_CLIENT_PROTOCOL_41 0x00000200u
#define MYSQL_CLIENT_INTERACTIVE 0x00000400u
#define MYSQL_CLIENT_SSL 0x00000800u
#define MYSQL_CLIENT_IGNORE_SIGPIPE 0x00001000u
#define MYSQL_CLIENT_TRANSACTIONS 0x00002000u
#define MYSQL_CLIENT_RESERVED 0x00004000u
#define MYSQL_CLIENT_SECURE_CONNECTION 0x00008000u
#define MYSQL_CLIENT_MULTI_STATEMENTS 0x00010000u
#define MYSQL_CLIENT_MULTI_RESULTS 0x00020000u
#define MYSQL_CLIENT_PS_MULTI_RESULTS 0x00040000u
#define MYSQL_CLIENT_PLUGIN_AUTH 0x00080000u
#define MYSQL_CLIENT_CONNECT_ATTRS 0x00100000u
#define MYSQL_CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA 0x00200000u
#define MYSQL_CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS 0x00400000u
#define MYSQL_CLIENT_SESSION_TRACK 0x00800000u
#define MYSQL_CLIENT_DEPRECATE_EOF 0x01000000u
#define MYSQL_CLIENT_OPTIONAL_RESULTSET_METADATA 0x02000000u
#define MYSQL_CLIENT_ZSTD_COMPRESSION_ALGORITHM 0x04000000u
#define MYSQL_CLIENT_QUERY_ATTRIBUTES 0x08000000u
#define MYSQL_CLIENT_SSL_VERIFY_SERVER_CERT 0x40000000u
#define MYSQL_CLIENT_REMEMBER_OPTIONS 0x80000000u

/* Server status flags (OK and EOF packets, the handshake). */
#define MYSQL_SERVER_STATUS_IN_TRANS 0x0001u
#define MYSQL_SERVER_STATUS_AUTOCOMMIT 0x0002u
#define MYSQL_SERVER_MORE_RESULTS_EXISTS 0x0008u
#define MYSQL_SERVER_QUERY_NO_GOOD_INDEX_USED 0x0010u
#define MYSQL_SERVER_QUERY_NO_INDEX_USED 0x0020u
#define MYSQL_SERVER_STATUS_CURSOR_EXISTS 0x0040u
#define MYSQL_SERVER_STATUS_LAST_ROW_SENT 0x0080u
#define MYSQL_SERVER_STATUS_DB_DROPPED 0x0100u
#define MYSQL_SERVER_STATUS_NO_BACKSLASH_ESCAPES 0x0200u
#define MYSQL_SERVER_STATUS_METADATA_CHANGED 0x0400u
#define MYSQL_SERVER_QUERY_WAS_SLOW 0x0800u
#define MYSQL_SERVER_PS_OUT_PARAMS 0x1000u
#define MYSQL_SERVER_STATUS_IN_TRANS_READONLY 0x2000u
#define MYSQL_SERVER_SESSION_STATE_CHANGED 0x4000u

/* Character sets (collation ids). */
#define MYSQL_CHARSET_UTF8_GENERAL_CI 33
#define MYSQL_CHARSET_UTF8MB4_GENERAL_CI 45
#define MYSQL_CHARSET_UTF8MB4_BIN 46
#define MYSQL_CHARSET_BINARY 63

/* Column types (ColumnDefinition41 "type"). */
enum {
    MYSQL_TYPE_DECIMAL = 0x00,
    MYSQL_TYPE_TINY = 0x01,
    MYSQL_TYPE_SHORT = 0x02,
    MYSQL_TYPE_LONG = 0x03,
    MYSQL_TYPE_FLOAT = 0x04,
    MYSQL_TYPE_DOUBLE = 0x05,
    MYSQL_TYPE_NULL = 0x06,
    MYSQL_TYPE_TIMESTAMP = 0x07,
    MYSQL_TYPE_LONGLONG = 0x08,
    MYSQL_TYPE_INT24 = 0x09,
    MYSQL_TYPE_DATE = 0x0a,
    MYSQL_TYPE_TIME = 0x0b,
    MYSQL_TYPE_DATETIME = 0x0c,
    MYSQL_TYPE_YEAR = 0x0d,
    MYSQL_TYPE_VARCHAR = 0x0f,
    MYSQL_TYPE_BIT = 0x10,
    MYSQL_TYPE_JSON = 0xf5,
    MYSQL_TYPE_NEWDECIMAL = 0xf6,
    MYSQL_TYPE_BLOB = 0xfc,
    MYSQL_TYPE_VAR_STRING = 0xfd,
    MYSQL_TYPE_STRING = 0xfe,
};

/* Column flags (ColumnDefinition41 "flags"). */
#define MYSQL_NOT_NULL_FLAG 0x0001u
#define MYSQL_PRI_KEY_FLAG 0x0002u
#define MYSQL_UNIQUE_KEY_FLAG 0x0004u
#define MYSQL_MULTIPLE_KEY_FLAG 0x0008u
#define MYSQL_BLOB_FLAG 0x0010u
#define MYSQL_UNSIGNED_FLAG 0x0020u
#define MYSQL_ZEROFILL_FLAG 0x0040u
#define MYSQL_BINARY_FLAG 0x0080u
#define MYSQL_AUTO_INCREMENT_FLAG 0x0200u
#define MYSQL_NO_DEFAULT_VALUE_FLAG 0x1000u
#define MYSQL_NUM_FLAG 0x8000u

/* Server error codes (MySQL's numbers; mysql_sqlstate gives each one's SQLSTATE). */
enum {
    MYSQL_ER_DB_CREATE_EXISTS = 1007,            /* HY000 */
    MYSQL_ER_DB_DROP_EXISTS = 1008,              /* HY000 */
    MYSQL_ER_HANDSHAKE_ERROR = 1043,             /* 08S01 */
    MYSQL_ER_DBACCESS_DENIED_ERROR = 1044,       /* 42000 */
    MYSQL_ER_ACCESS_DENIED_ERROR = 1045,         /* 28000 */
    MYSQL_ER_NO_DB_ERROR = 1046,                 /* 3D000 */
    MYSQL_ER_UNKNOWN_COM_ERROR = 1047,           /* 08S01 */
    MYSQL_ER_BAD_NULL_ERROR = 1048,              /* 23000 */
    MYSQL_ER_BAD_DB_ERROR = 1049,                /* 42000 */
    MYSQL_ER_TABLE_EXISTS_ERROR = 1050,          /* 42S01 */
    MYSQL_ER_BAD_TABLE_ERROR = 1051,             /* 42S02 */
    MYSQL_ER_BAD_FIELD_ERROR = 1054,             /* 42S22 */
    MYSQL_ER_WRONG_VALUE_COUNT = 1058,           /* 21S01 */
    MYSQL_ER_TOO_LONG_IDENT = 1059,              /* 42000 */
    MYSQL_ER_DUP_FIELDNAME = 1060,               /* 42S21 */
    MYSQL_ER_DUP_KEYNAME = 1061,                 /* 42000 */
    MYSQL_ER_DUP_ENTRY = 1062,                   /* 23000 */
    MYSQL_ER_PARSE_ERROR = 1064,                 /* 42000 */
    MYSQL_ER_EMPTY_QUERY = 1065,                 /* 42000 */
    MYSQL_ER_MULTIPLE_PRI_KEY = 1068,            /* 42000 */
    MYSQL_ER_KEY_COLUMN_DOES_NOT_EXITS = 1072,   /* 42000 (MySQL's spelling) */
    MYSQL_ER_WRONG_AUTO_KEY = 1075,              /* 42000 */
    MYSQL_ER_WRONG_DB_NAME = 1102,               /* 42000 */
    MYSQL_ER_WRONG_TABLE_NAME = 1103,            /* 42000 */
    MYSQL_ER_UNKNOWN_ERROR = 1105,               /* HY000 */
    MYSQL_ER_FIELD_SPECIFIED_TWICE = 1110,       /* 42000 */
    MYSQL_ER_WRONG_VALUE_COUNT_ON_ROW = 1136,    /* 21S01 */
    MYSQL_ER_NO_SUCH_TABLE = 1146,               /* 42S02 */
    MYSQL_ER_NET_PACKET_TOO_LARGE = 1153,        /* 08S01 */
    MYSQL_ER_NET_PACKETS_OUT_OF_ORDER = 1156,    /* 08S01 */
    MYSQL_ER_UNKNOWN_SYSTEM_VARIABLE = 1193,     /* HY000 */
    MYSQL_ER_SPECIFIC_ACCESS_DENIED_ERROR = 1227, /* 42000 */
    MYSQL_ER_NOT_SUPPORTED_YET = 1235,           /* 42000 */
    MYSQL_ER_NOT_SUPPORTED_AUTH_MODE = 1251,     /* 08004 */
    MYSQL_ER_WARN_DATA_OUT_OF_RANGE = 1264,      /* 22003 */
    MYSQL_ER_NO_DEFAULT_FOR_FIELD = 1364,        /* HY000 */
    MYSQL_ER_TRUNCATED_WRONG_VALUE_FOR_FIELD = 1366, /* HY000 */
    MYSQL_ER_CANNOT_USER = 1396,                 /* HY000 */
    MYSQL_ER_DATA_TOO_LONG = 1406,               /* 22001 */
    MYSQL_ER_SECURE_TRANSPORT_REQUIRED = 3159,   /* HY000 (MySQL; MariaDB uses 08004) */
    MYSQL_ER_PD_SERVER_TIMEOUT = 9001,           /* HY000 (TiDB) */
    MYSQL_ER_TIKV_SERVER_TIMEOUT = 9002,         /* HY000 (TiDB) */
    MYSQL_ER_TIKV_SERVER_BUSY = 9003,            /* HY000 (TiDB) */
    MYSQL_ER_REGION_UNAVAILABLE = 9005,          /* HY000 (TiDB) */
};

/* The SQLSTATE of a server error code above ("HY000" for codes it does not know). */
const char *mysql_sqlstate(uint16_t code);

/* "COM_QUERY" etc., or "COM_UNKNOWN(0x42)"-style text in buf for other bytes. */
const char *mysql_command_name(uint8_t cmd, char *buf, size_t buflen);

/* ---- byte buffers --------------------------------------------------------------------- */

struct mysql_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

void mysql_buf_init(struct mysql_buf *b);
void mysql_buf_free(struct mysql_buf *b);
/* Empties the buffer, keeping its memory. */
void mysql_buf_clear(struct mysql_buf *b);
/* Appends n bytes; -1 (nothing appended) when memory runs out. */
int mysql_buf_append(struct mysql_buf *b, const void *p, size_t n);

/* Payload building blocks, for use between mysql_packet_begin and mysql_packet_end. Each
 * returns 0, or -1 when memory runs out (then part of the value may have been appended:
 * abandon the packet by setting b->len back to its start). */
int mysql_put_u8(struct mysql_buf *b, uint8_t v);
int mysql_put_u16(struct mysql_buf *b, uint16_t v);
int mysql_put_u24(struct mysql_buf *b, uint32_t v);
int mysql_put_u32(struct mysql_buf *b, uint32_t v);
int mysql_put_lenenc_int(struct mysql_buf *b, uint64_t v);
int mysql_put_lenenc_str(struct mysql_buf *b, const void *s, size_t n);
/* Bytes mysql_put_lenenc_int takes for v: 1, 3, 4 or 9. */
size_t mysql_lenenc_int_size(uint64_t v);

/* ---- payload reader ------------------------------------------------------------------- */

/* A cursor over one payload. Every read returns 0 and advances, or -1 and leaves pos where
 * it was (truncated or malformed value). */
struct mysql_rd {
    const uint8_t *p;
    size_t len;
    size_t pos;
};

void mysql_rd_init(struct mysql_rd *r, const void *p, size_t len);
size_t mysql_rd_left(const struct mysql_rd *r);
int mysql_rd_u8(struct mysql_rd *r, uint8_t *v);
int mysql_rd_u16(struct mysql_rd *r, uint16_t *v);
int mysql_rd_u24(struct mysql_rd *r, uint32_t *v);
int mysql_rd_u32(struct mysql_rd *r, uint32_t *v);
/* n bytes as they are (*out points into the payload). */
int mysql_rd_bytes(struct mysql_rd *r, size_t n, const uint8_t **out);
/* A length-encoded integer; 0xFB (NULL) and 0xFF (undefined) are errors here. */
int mysql_rd_lenenc_int(struct mysql_rd *r, uint64_t *v);
/* A length-encoded string whose bytes all lie inside the payload. */
int mysql_rd_lenenc_str(struct mysql_rd *r, const uint8_t **s, size_t *n);
/* A NUL-terminated string (*s points at it, NUL-terminated in the payload; *n excludes
 * the NUL). */
int mysql_rd_nul_str(struct mysql_rd *r, const char **s, size_t *n);
/* A text-row value: a length-encoded string, or 0xFB for NULL (*is_null true, *s NULL). */
int mysql_rd_row_value(struct mysql_rd *r, const uint8_t **s, size_t *n, bool *is_null);

/* ---- packet framing ------------------------------------------------------------------- */

/* Starts a packet: reserves its header at the end of b and sets *start to where the packet
 * starts (pass it to mysql_packet_end). -1 when memory runs out. */
int mysql_packet_begin(struct mysql_buf *b, size_t *start);
/* Ends the packet begun at start: everything appended since is its payload. Writes the
 * header with *seq, splitting a payload of 2^24-1 bytes or more into several packets
 * (each with the next sequence id); advances *seq past the last. -1 when memory runs out
 * (b cut back to start) or when start is not a packet begun on b (b untouched). */
int mysql_packet_end(struct mysql_buf *b, size_t start, uint8_t *seq);
/* Appends payload[0..len) as one logical packet (split as above). */
int mysql_write_packet(struct mysql_buf *b, uint8_t *seq, const void *payload, size_t len);

enum mysql_read_status {
    MYSQL_READ_MORE,   /* not a whole packet yet: call again with more bytes */
    MYSQL_READ_PACKET, /* one logical packet in *out */
    MYSQL_READ_ERROR,  /* the stream cannot go on (err says why): close the connection */
};

struct mysql_packet {
    const uint8_t *payload; /* into the input when it was one packet, else into scratch */
    size_t len;
    uint8_t seq;      /* sequence id of its first packet */
    uint8_t next_seq; /* the id a reply starts with (one past its last packet) */
    size_t consumed;  /* input bytes it took (headers included) */
};

/* Reads one logical packet from the first in_len bytes of in. A payload split over several
 * packets (2^24-1 bytes each, then a shorter one) is reassembled into scratch (cleared
 * first; caller-owned, reusable). ERROR when the declared total exceeds max_payload (as soon
 * as the headers show it, before the bytes arrive), when the pieces' sequence ids are not
 * consecutive, or when memory runs out. */
enum mysql_read_status mysql_packet_read(const uint8_t *in, size_t in_len, size_t max_payload,
                                         struct mysql_buf *scratch, struct mysql_packet *out,
                                         char *err, size_t errlen);

/* ---- connection phase ----------------------------------------------------------------- */

/* The capabilities the server advertises (see the contract); CLIENT_SSL only with tls. */
uint32_t mysql_server_caps(bool tls_available);

/* Makes a scramble from 20 random bytes as MySQL does: each byte folded into 1..127, never
 * '\0' or '$' (clients read the scramble's halves as C strings). */
void mysql_scramble_make(const uint8_t random[MYSQL_SCRAMBLE_LEN],
                         uint8_t scramble[MYSQL_SCRAMBLE_LEN]);

struct mysql_handshake {
    const char *server_version; /* e.g. MYSQL_SERVER_VERSION; NUL-terminated */
    uint32_t conn_id;
    uint8_t scramble[MYSQL_SCRAMBLE_LEN];
    uint32_t caps;          /* mysql_server_caps(...) */
    uint8_t charset;        /* e.g. MYSQL_CHARSET_UTF8MB4_GENERAL_CI */
    uint16_t status;        /* e.g. MYSQL_SERVER_STATUS_AUTOCOMMIT */
    const char *auth_plugin; /* NULL: MYSQL_NATIVE_PLUGIN */
};

/* Appends the Initial Handshake v10 packet. Refuses (-1, err) a scramble with a 0 byte, a
 * version string over 250 bytes, or caps without PROTOCOL_41 and SECURE_CONNECTION. */
int mysql_write_handshake(struct mysql_buf *b, uint8_t *seq, const struct mysql_handshake *hs,
                          char *err, size_t errlen);

/* Client side: reads an Initial Handshake v10 payload (server_version and auth_plugin point
 * into it; auth_plugin is "" when the server sent none). */
int mysql_parse_handshake(const uint8_t *p, size_t n, struct mysql_handshake *out, char *err,
                          size_t errlen);

/* The client's first packet (and, after TLS, its second). */
struct mysql_client_hello {
    bool ssl_request;    /* an SSLRequest: only caps, max_packet and charset are set */
    uint32_t caps;       /* the client's flags as sent */
    uint32_t max_packet;
    uint8_t charset;
    const char *user;    /* NUL-terminated, into the payload */
    size_t user_len;
    const uint8_t *auth; /* auth response (20 bytes for mysql_native_password, 0 for none) */
    size_t auth_len;
    bool has_db;         /* CLIENT_CONNECT_WITH_DB was set: db is the initial database */
    const char *db;      /* "" when !has_db */
    size_t db_len;
    const char *plugin;  /* the client's auth plugin; "" when not sent */
    size_t plugin_len;
    size_t attrs_len;    /* bytes of connect attributes skipped */
};

/* Reads the client's first packet payload: exactly 32 bytes with CLIENT_SSL is an SSLRequest,
 * anything else must be a HandshakeResponse41 (fields per the client's own flags: auth
 * response length-encoded with PLUGIN_AUTH_LENENC_CLIENT_DATA, else 1-byte length with
 * SECURE_CONNECTION, else NUL-terminated; database with CONNECT_WITH_DB; plugin name with
 * PLUGIN_AUTH (may be missing at the end, as MySQL allows); connect attributes with
 * CONNECT_ATTRS when bytes remain — each a key/value pair of length-encoded strings, all
 * inside the declared total). Errors name the field: "handshake response: user name is not
 * NUL-terminated". */
int mysql_parse_client_hello(const uint8_t *p, size_t n, struct mysql_client_hello *out,
                             char *err, size_t errlen);

/* Client side: an SSLRequest packet (caps must include CLIENT_SSL). */
int mysql_write_ssl_request(struct mysql_buf *b, uint8_t *seq, uint32_t caps,
                            uint32_t max_packet, uint8_t charset);
/* Client side: a HandshakeResponse41 from h's caps, max_packet, charset, user, auth, db
 * (when caps has CONNECT_WITH_DB), plugin (when PLUGIN_AUTH); no connect attributes
 * (CLIENT_CONNECT_ATTRS is cleared). */
int mysql_write_handshake_response(struct mysql_buf *b, uint8_t *seq,
                                   const struct mysql_client_hello *h);

/* ---- mysql_native_password ------------------------------------------------------------ */

/* The stored form of password into out: "*" + 40 upper-case hex + NUL, or "" for an empty
 * password. -1 if SHA-1 fails. */
int mysql_native_password_hash(const char *password, size_t len,
                               char out[MYSQL_NATIVE_HASH_LEN + 1]);
/* Client side: the 20-byte auth response SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))).
 * An empty password has an empty response (returns 0 with *out_len 0). */
int mysql_native_password_scramble(const char *password, size_t len,
                                   const uint8_t scramble[MYSQL_SCRAMBLE_LEN],
                                   uint8_t out[MYSQL_SCRAMBLE_LEN], size_t *out_len);
/* true when the client's auth response proves the password stored as `stored` (a stored ""
 * accepts only an empty response; a malformed stored form accepts nothing). */
bool mysql_native_password_verify(const uint8_t scramble[MYSQL_SCRAMBLE_LEN],
                                  const uint8_t *resp, size_t resp_len, const char *stored);

/* ---- responses ------------------------------------------------------------------------ */

/* OK packet: 0x00, affected rows, last insert id, status, warnings, info (length-encoded;
 * NULL or "": none). */
int mysql_write_ok(struct mysql_buf *b, uint8_t *seq, uint64_t affected, uint64_t last_id,
                   uint16_t status, uint16_t warnings, const char *info);
/* The same with header 0xFE: what ends a result set under CLIENT_DEPRECATE_EOF. */
int mysql_write_ok_eof(struct mysql_buf *b, uint8_t *seq, uint64_t affected,
                       uint64_t last_id, uint16_t status, uint16_t warnings);
/* ERR packet: 0xFF, code, '#', SQLSTATE (mysql_sqlstate(code)), message (cut at
 * MYSQL_ERRMSG_MAX bytes). */
int mysql_write_err(struct mysql_buf *b, uint8_t *seq, uint16_t code, const char *msg);
/* ERR packet with an explicit SQLSTATE (5 characters, else "HY000" is sent). */
int mysql_write_err_state(struct mysql_buf *b, uint8_t *seq, uint16_t code,
                          const char *sqlstate, const char *msg);
/* EOF packet: 0xFE, warnings, status. */
int mysql_write_eof(struct mysql_buf *b, uint8_t *seq, uint16_t warnings, uint16_t status);

struct mysql_ok {
    uint64_t affected;
    uint64_t last_id;
    uint16_t status;
    uint16_t warnings;
    const uint8_t *info; /* into the payload */
    size_t info_len;
};
struct mysql_err {
    uint16_t code;
    char sqlstate[6];
    const uint8_t *msg; /* into the payload */
    size_t msg_len;
};
/* Client side: read an OK (0x00 or 0xFE header) / ERR payload. */
int mysql_parse_ok(const uint8_t *p, size_t n, struct mysql_ok *out);
int mysql_parse_err(const uint8_t *p, size_t n, struct mysql_err *out);

/* ---- text result sets ----------------------------------------------------------------- */

struct mysql_column {
    const char *schema;    /* NULL = "" */
    const char *table;     /* NULL = "" */
    const char *org_table; /* NULL = table */
    const char *name;      /* NULL = "" */
    const char *org_name;  /* NULL = name */
    uint16_t charset;
    uint32_t length;
    uint8_t type;
    uint16_t flags;
    uint8_t decimals;
};

/* A column named name of type with the usual charset, length and flags for the type:
 * integers binary (63) with BINARY_FLAG and their display width (LONGLONG 20, LONG 11...),
 * strings utf8mb4_general_ci (45) and length 1020 (255 characters of 4 bytes). */
void mysql_column_init(struct mysql_column *c, const char *name, uint8_t type);

int mysql_write_column_count(struct mysql_buf *b, uint8_t *seq, uint64_t n);
/* ColumnDefinition41: catalog "def", schema, table, org_table, name, org_name, 0x0c, charset,
 * length, type, flags, decimals, two 0 bytes. */
int mysql_write_column_def(struct mysql_buf *b, uint8_t *seq, const struct mysql_column *c);
/* A text row: each value a length-encoded string, 0xFB for NULL (vals[i] == NULL).
 * lens may be NULL (strlen of each value). */
int mysql_write_row(struct mysql_buf *b, uint8_t *seq, const char *const *vals,
                    const size_t *lens, size_t n);
/* A whole text result set: column count, ncols definitions, EOF, nrows rows (cells row-major,
 * ncols per row, NULL = SQL NULL; lens like cells, or NULL for strlen), final EOF with
 * status. Sequence ids run on from *seq. */
int mysql_write_resultset(struct mysql_buf *b, uint8_t *seq, const struct mysql_column *cols,
                          size_t ncols, const char *const *cells, const size_t *lens,
                          size_t nrows, uint16_t status);

#endif
