/* tidb-server: reads flags and config and wires the modules (the KV bridge to PD and TiKV, the
 * catalog, the MySQL port and its session workers, the status port); the daemon module runs
 * the process. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "catalog.h"
#include "daemon.h"
#include "kvbridge.h"
#include "log.h"
#include "mysql_server.h"
#include "tidb_config.h"
#include "tidb_status.h"
#include "tls.h"

#define SCHEMA_REFRESH_SEC 2

struct tidb_daemon {
    struct tidb_config cfg;
    struct daemon proc;
    struct tls_ctx *cluster_tls, *mysql_tls, *status_tls;
    char pd_endpoints[TIDB_MAX_PD_ENDPOINTS * 300];
    struct kvbridge *kv;
    struct catalog *catalog;
    struct exec_server exec;
    struct mysql_server *mysql;
    struct tidb_status *status;
    /* the schema the status port shows: refreshed by a thread (the loop must not block) */
    pthread_t refresher;
    bool refresher_started, refresher_stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    json_t *schema; /* {"db": ["t1", ...], ...} */
};

static void log_security(const struct tidb_config *c)
{
    daemon_log_security(&(struct daemon_security){
        .tls = c->cluster_tls,
        .mutual = c->security.cluster_verify_cn.n > 0,
        .ca_path = c->security.cluster_ssl_ca,
        .cert_path = c->security.cluster_ssl_cert,
        .cn_key = "cluster-verify-cn",
        .allowed_cn = c->security.cluster_verify_cn.items,
        .n_allowed_cn = c->security.cluster_verify_cn.n,
    });
    if (c->client_tls)
        log_info("MySQL clients: TLS offered (%s; cert %s)%s",
                 c->client_verify ? "client certificates verified against ssl-ca"
                                  : "one-way: no client certificate asked for",
                 c->security.ssl_cert,
                 c->security.require_secure_transport ? "; plaintext logins refused" : "");
    else
        log_warnx("MySQL clients: TLS off (no ssl-cert/ssl-key): logins and queries travel in "
                  "plaintext");
}

static int make_tls(struct tidb_daemon *d, char *err, size_t errlen)
{
    const struct tidb_config *c = &d->cfg;
    if (c->cluster_tls) {
        struct tls_opts o = {.role = "tidb", .ca_path = c->security.cluster_ssl_ca,
                             .cert_path = c->security.cluster_ssl_cert,
                             .key_path = c->security.cluster_ssl_key};
        if (!(d->cluster_tls = tls_ctx_new(TLS_CLIENT, &o, err, errlen)))
            return -1;
    }
    if (c->client_tls) {
        struct tls_opts o = {.role = "tidb-mysql", .ca_path = c->security.ssl_ca,
                             .cert_path = c->security.ssl_cert, .key_path = c->security.ssl_key,
                             .client_auth = c->client_verify ? TLS_AUTH_OPTIONAL : TLS_AUTH_NONE};
        if (!(d->mysql_tls = tls_ctx_new(TLS_SERVER, &o, err, errlen)))
            return -1;
    }
    return tidb_status_tls_new(c, &d->status_tls, err, errlen);
}

/* ---- the schema the status port shows ------------------------------------------------------ */

static json_t *read_schema(struct catalog *cat)
{
    char **dbs, **tables, err[300];
    size_t ndb, nt;
    if (catalog_list_dbs(cat, &dbs, &ndb, err, sizeof err) != 0)
        return NULL;
    json_t *all = json_object();
    for (size_t i = 0; all && i < ndb; i++) {
        json_t *list = json_array();
        if (catalog_list_tables(cat, dbs[i], &tables, &nt, err, sizeof err) == 0) {
            for (size_t k = 0; k < nt; k++)
                json_array_append_new(list, json_string(tables[k]));
            catalog_names_free(tables, nt);
        }
        json_object_set_new(all, dbs[i], list);
    }
    catalog_names_free(dbs, ndb);
    return all;
}

static void *refresh_main(void *arg)
{
    struct tidb_daemon *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->refresher_stop) {
        pthread_mutex_unlock(&d->mu);
        json_t *fresh = read_schema(d->catalog);
        pthread_mutex_lock(&d->mu);
        if (fresh) {
            json_decref(d->schema);
            d->schema = fresh;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += SCHEMA_REFRESH_SEC;
        while (!d->refresher_stop && pthread_cond_timedwait(&d->cv, &d->mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static json_t *schema_hook(const char *db, void *arg)
{
    struct tidb_daemon *d = arg;
    json_t *out = NULL;
    pthread_mutex_lock(&d->mu);
    if (!d->schema) {
        out = db ? NULL : json_array();
    } else if (!db) {
        out = json_array();
        const char *name;
        json_t *v;
        json_object_foreach(d->schema, name, v)
            json_array_append_new(out, json_pack("{s:s}", "name", name));
    } else {
        const char *name;
        json_t *v;
        json_object_foreach(d->schema, name, v) {
            if (strcasecmp(name, db) != 0)
                continue;
            out = json_array();
            size_t i;
            json_t *t;
            json_array_foreach(v, i, t)
                json_array_append_new(out, json_pack("{s:O}", "name", t));
        }
    }
    pthread_mutex_unlock(&d->mu);
    return out;
}

static unsigned long connections_hook(void *arg)
{
    struct tidb_daemon *d = arg;
    return d->mysql ? mysql_server_connections(d->mysql) : 0;
}

static void count_hook(const char *type, bool ok, void *arg)
{
    struct tidb_daemon *d = arg;
    if (d->status)
        tidb_status_count_query(d->status, type, ok);
}

/* ---- start and stop ------------------------------------------------------------------------ */

static void pd_endpoints(struct tidb_daemon *d)
{
    size_t o = 0;
    for (size_t i = 0; i < d->cfg.n_pd && o < sizeof d->pd_endpoints; i++) {
        char hp[URL_HOST_PORT_LEN];
        url_host_port(&d->cfg.pd_urls[i], hp, sizeof hp);
        int n = snprintf(d->pd_endpoints + o, sizeof d->pd_endpoints - o, "%s%s://%s",
                         i ? "," : "", d->cfg.pd_urls[i].scheme, hp);
        o += n > 0 ? (size_t)n : 0;
    }
}

static int start_servers(struct tidb_daemon *d, char *err, size_t errlen)
{
    const struct tidb_config *c = &d->cfg;
    d->exec = (struct exec_server){
        .catalog = d->catalog,
        .version = MYSQL_SERVER_VERSION,
        .have_ssl = c->client_tls,
        .require_secure = c->security.require_secure_transport,
        .ssl_ca = c->security.ssl_ca ? c->security.ssl_ca : "",
        .ssl_cert = c->security.ssl_cert ? c->security.ssl_cert : "",
        .ssl_key = c->security.ssl_key ? c->security.ssl_key : "",
        .count = count_hook,
        .count_arg = d,
    };
    if (c->client_tls && tls_cert_file_dates(c->security.ssl_cert, d->exec.server_not_before,
                                             d->exec.server_not_after,
                                             sizeof d->exec.server_not_before, err, errlen) != 0)
        return -1;
    struct mysql_server_opts mo = {.base = d->proc.base, .host = c->host, .port = (int)c->port,
                                   .tls = d->mysql_tls,
                                   .require_secure = c->security.require_secure_transport,
                                   .exec = &d->exec};
    if (!(d->mysql = mysql_server_new(&mo, err, errlen)))
        return -1;
    struct tidb_status_info info = {.version = MYSQL_SERVER_VERSION, .ip = c->host,
                                    .port = mysql_server_port(d->mysql)};
    struct tidb_status_hooks hooks = {.connections = connections_hook, .schema = schema_hook,
                                      .arg = d};
    if (!(d->status = tidb_status_new(d->proc.base, c->status_host, (int)c->status_port,
                                      d->status_tls, &info, &hooks, err, errlen)))
        return -1;
    if (d->mysql_tls)
        tidb_status_watch_tls(d->status, "mysql", d->mysql_tls);
    if (d->status_tls)
        tidb_status_watch_tls(d->status, "status", d->status_tls);
    if (d->cluster_tls)
        tidb_status_watch_tls(d->status, "cluster", d->cluster_tls);
    return 0;
}

static int start(struct tidb_daemon *d, char *err, size_t errlen)
{
    struct daemon_opts o = {"tidb", d->cfg.log_file, d->cfg.log_level};
    if (daemon_init(&d->proc, &o, err, errlen) != 0 || make_tls(d, err, errlen) != 0)
        return -1;
    log_security(&d->cfg);
    pd_endpoints(d);
    if (!(d->kv = kvbridge_new(d->proc.base, d->pd_endpoints, d->cluster_tls, err, errlen)) ||
        !(d->catalog = catalog_new(d->kv))) {
        if (d->kv && !d->catalog)
            snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (start_servers(d, err, errlen) != 0)
        return -1;
    if (pthread_create(&d->refresher, NULL, refresh_main, d) != 0) {
        snprintf(err, errlen, "cannot start the schema refresher");
        return -1;
    }
    d->refresher_started = true;
    log_info("TiDB serving MySQL on %s:%d and status on %s:%d (store tikv, PD %s)", d->cfg.host,
             mysql_server_port(d->mysql), d->cfg.status_host, tidb_status_port(d->status),
             d->pd_endpoints);
    return 0;
}

static void stop(struct tidb_daemon *d)
{
    if (d->kv)
        kvbridge_close(d->kv); /* workers waiting on TiKV give up now */
    if (d->refresher_started) {
        pthread_mutex_lock(&d->mu);
        d->refresher_stop = true;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->refresher, NULL);
    }
    mysql_server_free(d->mysql);
    tidb_status_free(d->status);
    catalog_free(d->catalog);
    kvbridge_free(d->kv);
    json_decref(d->schema);
    tls_ctx_free(d->cluster_tls);
    tls_ctx_free(d->mysql_tls);
    tls_ctx_free(d->status_tls);
    tidb_config_free(&d->cfg);
    daemon_free(&d->proc);
}

int main(int argc, char **argv)
{
    static struct tidb_daemon d = {.mu = PTHREAD_MUTEX_INITIALIZER,
                                   .cv = PTHREAD_COND_INITIALIZER};
    char err[1024];
    int rc = tidb_config_load(&d.cfg, argc, argv, err, sizeof err);
    if (rc == 0)
        rc = tidb_config_validate(&d.cfg, err, sizeof err);
    if (rc == 0)
        rc = start(&d, err, sizeof err);
    if (rc == 0 && daemon_run(&d.proc) != 0) {
        snprintf(err, sizeof err, "the event loop failed");
        rc = -1;
    }
    if (rc == 0) {
        log_info("TiDB stopped");
    } else if (rc < 0) {
        fprintf(stderr, "tidb-server: %s\n", err);
        if (d.proc.log_opened && d.cfg.log_file && *d.cfg.log_file)
            log_error("%s", err);
    }
    stop(&d);
    return rc < 0 ? 1 : 0;
}
