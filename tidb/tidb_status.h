/* tidb_status.h — TiDB's status port: GET /status, /info, /metrics, /schema over HTTPS.
 *
 * Contract:
 * - tidb_status_tls_new builds the port's TLS from the config as real TiDB does: off (plain
 *   HTTP, *out NULL) without cluster TLS; with it, the cluster-ssl-cert/-key are presented
 *   and a client certificate is asked for ONLY when cluster-verify-cn is not empty. Then it
 *   must be signed by cluster-ssl-ca and its CN be in the list, or the handshake fails (real
 *   TiDB: "client certificate authentication failed. The Common Name from the client
 *   certificate was not found in the configuration cluster-verify-cn"). With the list empty
 *   no certificate is asked for and any client is served, as Go's default NoClientCert.
 * - tidb_status_new serves host:port (port 0: a free one, see tidb_status_port) with that
 *   ctx (NULL: plain HTTP). Every path answers GET only (another method: 405); unknown
 *   paths: 404.
 * - GET /status: {"connections":N,"version":"...","git_hash":"..."} on one line, as real
 *   TiDB's handler writes it (N from the connections hook).
 * - GET /info: real TiDB's ServerInfo fields this server has: is_owner (true: the only TiDB
 *   runs DDL), version, git_hash, ddl_id (a random UUID per start unless given), ip,
 *   listening_port, status_port (the bound port), lease, binlog_status ("Off"),
 *   start_timestamp, labels ({}), server_id (0).
 * - GET /metrics: Prometheus text (version 0.0.4):
 *     tidb_server_connections N                               (gauge, from the hook)
 *     tidb_server_query_total{result="OK|Error",type="T"} N   (counter, per statement type)
 *     tisim_tls_handshakes_total{port="NAME",result="full|resumed|failed"} N
 *   the last for every ctx registered with tidb_status_watch_tls ("mysql", "status").
 * - GET /schema: the JSON array the schema hook returns for db NULL (the databases).
 *   GET /schema/{db}: the array it returns for db (its tables), 404 "[schema:1049]Unknown
 *   database 'db'" when it returns NULL. GET /schema/{db}/{table}: the element of that
 *   array whose "name" is table (a string, or TiDB's {"O":..,"L":..} form; compared
 *   case-insensitively), 404 "[schema:1146]Table 'db.table' doesn't exist" when none.
 *   Names in the path are percent-decoded. Without a schema hook these answer 404.
 * - Hooks run on the event loop thread and must not block it (answer from memory, e.g. the
 *   catalog's cached copy): hooks.schema returns a new reference (the caller's to release).
 * - tidb_status_count_query may be called from any thread (session workers); everything
 *   else belongs to the event loop's thread. Statement types are names of up to 32 letters,
 *   digits and '_' ("Select", "Insert", ...; copied); at most TIDB_STATUS_MAX_TYPES distinct
 *   ones are kept, the rest (and any other text) are counted as "other".
 */
#ifndef TISIM_TIDB_STATUS_H
#define TISIM_TIDB_STATUS_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "tidb_config.h"
#include "tls.h"

#define TIDB_STATUS_MAX_TYPES 32
#define TIDB_STATUS_MAX_TLS 4

struct tidb_status;

struct tidb_status_info {
    const char *version;       /* the MySQL server version, "8.0.11-TiDB-..." */
    const char *git_hash;      /* NULL: "" */
    const char *ddl_id;        /* NULL: a random UUID made by tidb_status_new */
    const char *ip;            /* the address clients use, NULL: "" */
    int port;                  /* the MySQL port */
    const char *lease;         /* NULL: "45s" */
    long long start_timestamp; /* Unix seconds, 0: now */
};

struct tidb_status_hooks {
    /* Open MySQL connections; NULL: 0. */
    unsigned long (*connections)(void *arg);
    /* db NULL: the databases; db set: its tables, NULL when there is no such database. */
    json_t *(*schema)(const char *db, void *arg);
    void *arg;
};

/* 0 with *out NULL (cluster TLS off: plain HTTP) or the ctx; -1 with err (tls_ctx_new's). */
int tidb_status_tls_new(const struct tidb_config *c, struct tls_ctx **out, char *err,
                        size_t errlen);
struct tidb_status *tidb_status_new(struct event_base *base, const char *host, int port,
                                    struct tls_ctx *tls, const struct tidb_status_info *info,
                                    const struct tidb_status_hooks *hooks, char *err,
                                    size_t errlen);
int tidb_status_port(const struct tidb_status *s);
/* Reports ctx's handshake counters under port="name" (a literal) in /metrics. -1 when full. */
int tidb_status_watch_tls(struct tidb_status *s, const char *name, struct tls_ctx *ctx);
/* One statement of type ("Select") finished, ok or with an error. Thread-safe. */
void tidb_status_count_query(struct tidb_status *s, const char *type, bool ok);
void tidb_status_free(struct tidb_status *s);

#endif
