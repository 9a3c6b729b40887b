/* executor.h — runs one SQL statement for a session and writes the MySQL reply packets.
 *
 * Contract:
 * - executor_query parses (sql_parse.h) and runs one COM_QUERY on session s, appending the
 *   whole reply (an OK, an ERR, or a text result set) to out with sequence ids from seq.
 *   Every failure is an ERR packet with MySQL's code and SQLSTATE: a parse error, an unknown
 *   database (1049) or table (1146) or column (1054), no database selected (1046), a
 *   duplicate key (1062), a NULL into a NOT NULL column (1048), a value too long (1406), an
 *   unsupported statement (1235), TiKV unreachable or refusing us (1105 with the reason).
 *   It never drops the connection. Blocking (catalog and TiKV calls): session workers only.
 * - Rows live in TiKV under TiDB's keys (tablecodec.h): an integer primary key is the row's
 *   handle; otherwise a hidden handle comes from the table's auto-increment sequence and the
 *   primary key is a unique index. INSERT writes each statement's rows and index entries in
 *   one atomic raw_batch_put; DELETE removes rows and their index entries with
 *   raw_batch_delete, up to 1000 keys a call (a row's keys always in one). Reads by primary
 *   key (=, IN, BETWEEN, ranges) get or scan only the keys they need; anything else scans the table's rows and filters.
 * - executor_use is COM_INIT_DB (and USE): checks the database exists (1049).
 * - s->db is the session's current database (updated by USE); the rest of s is read-only.
 */
#ifndef TISIM_EXECUTOR_H
#define TISIM_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "mysql_proto.h"

/* What the server knows once and every session shows (read-only while sessions run). */
struct exec_server {
    struct catalog *catalog;
    const char *version;        /* MYSQL_SERVER_VERSION */
    bool have_ssl;              /* ssl-cert and ssl-key given */
    bool require_secure;
    const char *ssl_ca, *ssl_cert, *ssl_key; /* as configured, "" when not */
    char server_not_before[32]; /* "Jan  1 00:00:00 2026 GMT", of ssl-cert */
    char server_not_after[32];
    /* counts a statement by kind ("Select", "Insert", ...) and whether it failed; may be NULL */
    void (*count)(const char *type, bool ok, void *arg);
    void *count_arg;
};

struct exec_session {
    const struct exec_server *server;
    uint32_t conn_id;
    char user[CAT_NAME_MAX + 1];    /* as authenticated */
    char client_host[256];          /* the client's address, for USER() */
    char account_host[256];         /* the account's host, for CURRENT_USER() */
    char db[CAT_NAME_MAX + 1];      /* "" when none */
    bool tls;
    char tls_version[16];
    char tls_cipher[64];
    bool cert_verified;             /* a client certificate was presented and verified */
    char subject[512], issuer[512]; /* of that certificate */
    uint64_t last_insert_id;
};

void executor_query(struct exec_session *s, const char *sql, size_t len, uint8_t seq,
                    struct mysql_buf *out);
void executor_use(struct exec_session *s, const char *db, uint8_t seq, struct mysql_buf *out);

/* MySQL's LIKE on ASCII, case-insensitive: % any run, _ one byte, \ escapes. */
bool executor_like(const char *s, const char *pattern);

#endif
