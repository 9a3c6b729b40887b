/* tidb_status.c — TiDB's status port. See tidb_status.h. */
#include "tidb_status.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "http.h"

#define UUID_LEN 37

#define TYPE_MAX 32

struct query_counter {
    char type[TYPE_MAX + 1]; /* a copy: callers may pass any string */
    unsigned long long ok, error;
};

struct watched_tls {
    const char *name;
    struct tls_ctx *ctx;
};

struct tidb_status {
    struct http_server *http;
    struct tidb_status_hooks hooks;
    char *version, *git_hash, *ip, *lease;
    char ddl_id[UUID_LEN];
    int port;
    long long start_timestamp;
    pthread_mutex_t mu; /* guards the query counters */
    struct query_counter queries[TIDB_STATUS_MAX_TYPES];
    size_t n_queries;
    struct query_counter other;
    struct watched_tls tls[TIDB_STATUS_MAX_TLS];
    size_t n_tls;
};

/* ------------------------------------------------------------------------------------------ */
/* TLS, as real TiDB sets up its status port                                                  */

int tidb_status_tls_new(const struct tidb_config *c, struct tls_ctx **out, char *err,
                        size_t errlen)
{
    *out = NULL;
    if (!c->cluster_tls)
        return 0;
    const struct cfg_list *cn = &c->security.cluster_verify_cn;
    struct tls_opts o = {
        .role = "tidb",
        .ca_path = c->security.cluster_ssl_ca,
        .cert_path = c->security.cluster_ssl_cert,
        .key_path = c->security.cluster_ssl_key,
        .allowed_cn = cn->items,
        .n_allowed_cn = cn->n,
        .cn_check = TLS_CN_HANDSHAKE,
        /* Go's tls.Config: ClientAuth stays NoClientCert unless cluster-verify-cn is set,
         * then RequireAndVerifyClientCert with the CN check. */
        .client_auth = cn->n > 0 ? TLS_AUTH_REQUIRED : TLS_AUTH_NONE,
    };
    *out = tls_ctx_new(TLS_SERVER, &o, err, errlen);
    return *out ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Replies                                                                                     */

static bool only_get(struct evhttp_request *req)
{
    if (evhttp_request_get_command(req) == EVHTTP_REQ_GET)
        return true;
    http_reply_error(req, 405, "method not allowed on %s", evhttp_request_get_uri(req));
    return false;
}

/* One line of JSON, as Go's json.Marshal writes it (real TiDB's /status). Takes body. */
static void reply_compact(struct evhttp_request *req, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    struct evbuffer *b = text ? evbuffer_new() : NULL;
    if (!b) {
        free(text);
        http_reply_error(req, 500, "out of memory");
        return;
    }
    evbuffer_add(b, text, strlen(text));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, 200, NULL, b);
    evbuffer_free(b);
    free(text);
}

static unsigned long connections(const struct tidb_status *s)
{
    return s->hooks.connections ? s->hooks.connections(s->hooks.arg) : 0;
}

static void handle_status(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct tidb_status *s = arg;
    if (!only_get(req))
        return;
    json_t *body = json_pack("{s:I, s:s, s:s}", "connections", (json_int_t)connections(s),
                             "version", s->version, "git_hash", s->git_hash);
    if (!body) {
        http_reply_error(req, 500, "cannot build the status");
        return;
    }
    reply_compact(req, body);
}

static void handle_info(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct tidb_status *s = arg;
    if (!only_get(req))
        return;
    json_t *body = json_pack("{s:b, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:I, s:{}, s:i}",
                             "is_owner", 1, "version", s->version, "git_hash", s->git_hash,
                             "ddl_id", s->ddl_id, "ip", s->ip, "listening_port", s->port,
                             "status_port", tidb_status_port(s), "lease", s->lease,
                             "binlog_status", "Off", "start_timestamp",
                             (json_int_t)s->start_timestamp, "labels", "server_id", 0);
    if (!body) {
        http_reply_error(req, 500, "cannot build the server info");
        return;
    }
    http_reply_json(req, 200, body);
}

/* ------------------------------------------------------------------------------------------ */
/* /metrics                                                                                    */

static void add_query_lines(struct evbuffer *b, const struct query_counter *q)
{
    if (q->ok)
        evbuffer_add_printf(b, "tidb_server_query_total{result=\"OK\",type=\"%s\"} %llu\n",
                            q->type, q->ok);
    if (q->error)
        evbuffer_add_printf(b, "tidb_server_query_total{result=\"Error\",type=\"%s\"} %llu\n",
                            q->type, q->error);
}

static void add_queries(struct tidb_status *s, struct evbuffer *b)
{
    http_metrics_help(b, "tidb_server_query_total", "counter", "Counter of queries.");
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_queries; i++)
        add_query_lines(b, &s->queries[i]);
    add_query_lines(b, &s->other);
    pthread_mutex_unlock(&s->mu);
}

static void add_handshakes(const struct tidb_status *s, struct evbuffer *b)
{
    http_metrics_help(b, "tisim_tls_handshakes_total", "counter", "TLS handshakes by port and result.");
    for (size_t i = 0; i < s->n_tls; i++)
        http_metrics_tls(b, s->tls[i].name, s->tls[i].ctx);
}

static void handle_metrics(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct tidb_status *s = arg;
    if (!only_get(req))
        return;
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        http_reply_error(req, 500, "out of memory");
        return;
    }
    http_metrics_help(b, "tidb_server_connections", "gauge", "Number of connections.");
    evbuffer_add_printf(b, "tidb_server_connections %lu\n", connections(s));
    add_queries(s, b);
    add_handshakes(s, b);
    http_reply_metrics(req, b);
    evbuffer_free(b);
}

/* ------------------------------------------------------------------------------------------ */
/* /schema                                                                                     */

/* A table's "name": a string, or TiDB's CIStr {"O": "T1", "L": "t1"}. */
static bool name_is(const json_t *table, const char *want)
{
    json_t *n = json_object_get(table, "name");
    if (json_is_object(n)) {
        json_t *l = json_object_get(n, "L");
        n = json_is_string(l) ? l : json_object_get(n, "O");
    }
    return json_is_string(n) && strcasecmp(json_string_value(n), want) == 0;
}

static void reply_table(struct evhttp_request *req, json_t *tables, const char *db,
                        const char *table)
{
    size_t i;
    json_t *t;
    json_array_foreach(tables, i, t) {
        if (name_is(t, table)) {
            http_reply_json(req, 200, json_incref(t));
            return;
        }
    }
    http_reply_error(req, 404, "[schema:1146]Table '%s.%s' doesn't exist", db, table);
}

/* One percent-decoded name of len bytes at s; NULL when empty, malformed or holding a NUL. */
static char *decode_name(const char *s, size_t len)
{
    char *raw = strndup(s, len);
    size_t n = 0;
    char *name = raw ? evhttp_uridecode(raw, 0, &n) : NULL;
    free(raw);
    if (name && (n == 0 || strlen(name) != n)) {
        free(name);
        name = NULL;
    }
    return name;
}

/* "db" or "db/table", the path after "/schema/", into decoded db and table (table "" when
 * absent). -1 for an empty or malformed name or more than two parts. */
static int split_names(const char *rest, char **db, char **table)
{
    const char *slash = strchr(rest, '/');
    *db = *table = NULL;
    if (slash && strchr(slash + 1, '/'))
        return -1;
    *db = decode_name(rest, slash ? (size_t)(slash - rest) : strlen(rest));
    *table = slash ? decode_name(slash + 1, strlen(slash + 1)) : strdup("");
    if (*db && *table)
        return 0;
    free(*db);
    free(*table);
    *db = *table = NULL;
    return -1;
}

static void reply_db(struct tidb_status *s, struct evhttp_request *req, const char *rest)
{
    char *db, *table;
    if (split_names(rest, &db, &table) != 0) {
        http_reply_error(req, 404, "no such API: /schema/%s", rest);
        return;
    }
    json_t *tables = s->hooks.schema(db, s->hooks.arg);
    if (!tables)
        http_reply_error(req, 404, "[schema:1049]Unknown database '%s'", db);
    else if (!*table)
        http_reply_json(req, 200, json_incref(tables));
    else if (json_is_array(tables))
        reply_table(req, tables, db, table);
    else
        http_reply_error(req, 500, "the tables of '%s' are not a JSON array", db);
    json_decref(tables);
    free(db);
    free(table);
}

static void handle_schema(struct evhttp_request *req, const char *rest, void *arg)
{
    struct tidb_status *s = arg;
    if (!only_get(req))
        return;
    if (!s->hooks.schema) {
        http_reply_error(req, 404, "no schema information on this server");
        return;
    }
    if (*rest) {
        reply_db(s, req, rest);
        return;
    }
    json_t *dbs = s->hooks.schema(NULL, s->hooks.arg);
    if (!dbs)
        http_reply_error(req, 500, "cannot list the databases");
    else
        http_reply_json(req, 200, dbs);
}

/* ------------------------------------------------------------------------------------------ */
/* Life cycle                                                                                  */

#define ANY_METHOD                                                                            \
    (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD | \
     EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH)

/* A version 4 UUID, as real TiDB's ddl_id. */
static int make_uuid(char out[UUID_LEN])
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        return -1;
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, UUID_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
    return 0;
}

static int copy_info(struct tidb_status *s, const struct tidb_status_info *info)
{
    s->version = strdup(info->version ? info->version : "");
    s->git_hash = strdup(info->git_hash ? info->git_hash : "");
    s->ip = strdup(info->ip ? info->ip : "");
    s->lease = strdup(info->lease ? info->lease : "45s");
    s->port = info->port;
    s->start_timestamp = info->start_timestamp ? info->start_timestamp : (long long)time(NULL);
    if (!s->version || !s->git_hash || !s->ip || !s->lease)
        return -1;
    if (info->ddl_id) {
        snprintf(s->ddl_id, sizeof s->ddl_id, "%.36s", info->ddl_id);
        return 0;
    }
    return make_uuid(s->ddl_id);
}

static int add_routes(struct tidb_status *s)
{
    if (http_server_route(s->http, ANY_METHOD, "/status", handle_status, s) ||
        http_server_route(s->http, ANY_METHOD, "/info", handle_info, s) ||
        http_server_route(s->http, ANY_METHOD, "/metrics", handle_metrics, s) ||
        http_server_route(s->http, ANY_METHOD, "/schema", handle_schema, s) ||
        http_server_route(s->http, ANY_METHOD, "/schema/", handle_schema, s))
        return -1;
    return 0;
}

struct tidb_status *tidb_status_new(struct event_base *base, const char *host, int port,
                                    struct tls_ctx *tls, const struct tidb_status_info *info,
                                    const struct tidb_status_hooks *hooks, char *err,
                                    size_t errlen)
{
    struct tidb_status *s = calloc(1, sizeof *s);
    if (!s || pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->other.type, sizeof s->other.type, "other");
    if (hooks)
        s->hooks = *hooks;
    if (copy_info(s, info) != 0) {
        snprintf(err, errlen, "status port: cannot set up the server info (out of memory)");
        tidb_status_free(s);
        return NULL;
    }
    s->http = http_server_new(base, host, port, tls, err, errlen);
    if (!s->http || add_routes(s) != 0) {
        if (s->http)
            snprintf(err, errlen, "out of memory");
        tidb_status_free(s);
        return NULL;
    }
    return s;
}

int tidb_status_port(const struct tidb_status *s)
{
    return s && s->http ? http_server_port(s->http) : -1;
}

int tidb_status_watch_tls(struct tidb_status *s, const char *name, struct tls_ctx *ctx)
{
    if (s->n_tls >= TIDB_STATUS_MAX_TLS || !ctx)
        return -1;
    s->tls[s->n_tls++] = (struct watched_tls){name, ctx};
    return 0;
}

static bool type_ok(const char *type)
{
    if (!type || !*type || strlen(type) > TYPE_MAX)
        return false;
    for (const char *p = type; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    return true;
}

/* The counter of type (added when there is room), or "other". Under s->mu. */
static struct query_counter *counter_of(struct tidb_status *s, const char *type)
{
    if (!type_ok(type))
        return &s->other;
    for (size_t i = 0; i < s->n_queries; i++)
        if (strcmp(s->queries[i].type, type) == 0)
            return &s->queries[i];
    if (s->n_queries >= TIDB_STATUS_MAX_TYPES)
        return &s->other;
    struct query_counter *q = &s->queries[s->n_queries++];
    *q = (struct query_counter){0};
    snprintf(q->type, sizeof q->type, "%s", type);
    return q;
}

void tidb_status_count_query(struct tidb_status *s, const char *type, bool ok)
{
    pthread_mutex_lock(&s->mu);
    struct query_counter *q = counter_of(s, type);
    if (ok)
        q->ok++;
    else
        q->error++;
    pthread_mutex_unlock(&s->mu);
}

void tidb_status_free(struct tidb_status *s)
{
    if (!s)
        return;
    http_server_free(s->http);
    pthread_mutex_destroy(&s->mu);
    free(s->version);
    free(s->git_hash);
    free(s->ip);
    free(s->lease);
    free(s);
}
