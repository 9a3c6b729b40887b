/* tikv-server: reads flags and config and wires the modules (engine, replica of region 1, KV
 * service, status port, PD link); the daemon module runs the process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cipherfile.h"
#include "daemon.h"
#include "kv_engine.h"
#include "log.h"
#include "replica.h"
#include "tikv_config.h"
#include "tikv_kv.h"
#include "tikv_pd.h"
#include "tikv_status.h"
#include "tls.h"

#define TIKV_VERSION "tisim-0.2 (TiKV-style, Raft replication)"

struct tikv_daemon {
    struct tikv_config cfg;
    struct daemon proc;
    struct tls_ctx *server_tls, *client_tls;
    struct cipher_keys keys;
    bool encrypted;
    struct kv_engine *engine;
    struct replica *replica;
    char own_cn[256];
    struct tikv_kv *kv;
    struct tikv_status *status;
    struct tikv_pd *pd;
    char pd_endpoints[TIKV_MAX_PD_ENDPOINTS * (URL_HOST_PORT_LEN + 10)];
    char refusal[512]; /* why PD refused this store, "" if it did not */
};

static void log_security(const struct tikv_config *c)
{
    daemon_log_security(&(struct daemon_security){
        .tls = c->tls,
        .mutual = true,
        .ca_path = c->security.ca_path,
        .cert_path = c->security.cert_path,
        .cn_key = "cert-allowed-cn",
        .allowed_cn = c->security.cert_allowed_cn.items,
        .n_allowed_cn = c->security.cert_allowed_cn.n,
    });
}

/* As real TiKV: the handshake admits any certificate of the CA; the CN is checked per
 * request on the KV port, and per path on the status port. */
static int make_tls(struct tikv_daemon *d, char *err, size_t errlen)
{
    if (!d->cfg.tls)
        return 0;
    struct tls_opts o = {
        .role = "tikv",
        .ca_path = d->cfg.security.ca_path,
        .cert_path = d->cfg.security.cert_path,
        .key_path = d->cfg.security.key_path,
        .allowed_cn = d->cfg.security.cert_allowed_cn.items,
        .n_allowed_cn = d->cfg.security.cert_allowed_cn.n,
        .cn_check = TLS_CN_SERVICE,
    };
    d->server_tls = tls_ctx_new(TLS_SERVER, &o, err, errlen);
    if (!d->server_tls)
        return -1;
    d->client_tls = tls_ctx_new(TLS_CLIENT, &o, err, errlen);
    if (!d->client_tls)
        return -1;
    return tls_cert_file_cn(d->cfg.security.cert_path, d->own_cn, sizeof d->own_cn, err, errlen);
}

static json_t *status_json(void *arg)
{
    struct tikv_daemon *d = arg;
    struct kv_engine_stats st;
    kv_engine_stats(d->engine, &st);
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:o}", "store_id",
                     (json_int_t)(d->pd ? tikv_pd_store_id(d->pd) : 0), "address",
                     d->cfg.addr, "status_address", d->cfg.status_addr, "pd",
                     d->pd ? tikv_pd_endpoint(d->pd) : "", "role", replica_role(d->replica),
                     "encrypted", st.encrypted, "key_count", (json_int_t)st.keys, "writes",
                     (json_int_t)st.writes, "syncs", (json_int_t)st.syncs, "replication",
                     replica_status_json(d->replica));
}

static void pd_stats(struct tikv_pd_stats *out, void *arg)
{
    struct tikv_daemon *d = arg;
    struct kv_engine_stats st;
    kv_engine_stats(d->engine, &st);
    out->used_size = st.log_bytes;
    out->region_count = strcmp(replica_role(d->replica), "none") != 0;
    out->term = replica_leader_term(d->replica);
    out->leader_of = out->term ? REPLICA_REGION_ID : 0;
    out->hurry = replica_forming(d->replica);
}

static void pd_region(const struct tikv_pd_region *region, void *arg)
{
    struct tikv_daemon *d = arg;
    replica_on_region(d->replica, tikv_pd_store_id(d->pd), region);
}

static void pd_refused(const char *why, void *arg)
{
    struct tikv_daemon *d = arg;
    snprintf(d->refusal, sizeof d->refusal, "%s", why);
    daemon_stop(&d->proc);
}

static void pd_registered(uint64_t id, void *arg)
{
    (void)arg;
    log_info("serving as store %llu", (unsigned long long)id);
}

static int open_engine(struct tikv_daemon *d, char *err, size_t errlen)
{
    if (d->cfg.security.cipher_file && *d->cfg.security.cipher_file) {
        if (cipherfile_load(d->cfg.security.cipher_file, &d->keys, err, errlen) != 0)
            return -1;
        d->encrypted = true;
    }
    if (kv_engine_open(d->proc.base, d->cfg.data_dir, d->encrypted ? &d->keys : NULL,
                       &d->engine, err, errlen) != 0)
        return -1;
    struct replica_opts ro = {.base = d->proc.base,
                              .engine = d->engine,
                              .data_dir = d->cfg.data_dir,
                              .addr = d->cfg.addr,
                              .keys = d->encrypted ? &d->keys : NULL,
                              .client_tls = d->client_tls,
                              .own_cn = d->own_cn[0] ? d->own_cn : NULL,
                              .allowed_cn = d->cfg.security.cert_allowed_cn.items,
                              .n_allowed_cn = d->cfg.security.cert_allowed_cn.n};
    d->replica = replica_new(&ro, err, errlen);
    return d->replica ? 0 : -1;
}

static int link_pd(struct tikv_daemon *d, char *err, size_t errlen)
{
    size_t o = 0;
    for (size_t i = 0; i < d->cfg.n_pd; i++) {
        char hp[URL_HOST_PORT_LEN];
        url_host_port(&d->cfg.pd_urls[i], hp, sizeof hp);
        o += (size_t)snprintf(d->pd_endpoints + o, sizeof d->pd_endpoints - o, "%s%s://%s",
                              i ? "," : "", d->cfg.pd_urls[i].scheme, hp);
    }
    struct tikv_pd_store store = {d->cfg.addr, d->cfg.status_addr, TIKV_VERSION, d->encrypted};
    struct tikv_pd_callbacks cb = {.on_registered = pd_registered, .on_refused = pd_refused,
                                   .stats = pd_stats, .on_region = pd_region, .arg = d};
    d->pd = tikv_pd_new(d->proc.base, d->pd_endpoints, d->client_tls, &store, &cb, err, errlen);
    if (!d->pd)
        return -1;
    tikv_pd_start(d->pd);
    return 0;
}

static int start(struct tikv_daemon *d, char *err, size_t errlen)
{
    struct daemon_opts o = {"tikv", d->cfg.log_file, d->cfg.log_level};
    if (daemon_init(&d->proc, &o, err, errlen) != 0 || make_tls(d, err, errlen) != 0)
        return -1;
    log_security(&d->cfg);
    if (open_engine(d, err, errlen) != 0)
        return -1;
    d->status = tikv_status_new(d->proc.base, d->cfg.status_url.host, d->cfg.status_url.port,
                                d->server_tls, status_json, d, err, errlen);
    if (!d->status)
        return -1;
    tikv_status_watch_tls(d->status, "kv", d->server_tls); /* shared by both ports */
    struct tikv_kv_opts ko = {.engine = d->engine,
                              .replica = d->replica,
                              .allowed_cn = d->cfg.security.cert_allowed_cn.items,
                              .n_allowed_cn = d->cfg.security.cert_allowed_cn.n,
                              .status = d->status,
                              .status_json = status_json,
                              .status_arg = d,
                              .keys = d->encrypted ? &d->keys : NULL};
    d->kv = tikv_kv_new(d->proc.base, &ko, d->cfg.addr_url.host, d->cfg.addr_url.port,
                        d->server_tls, err, errlen);
    if (!d->kv || link_pd(d, err, errlen) != 0)
        return -1;
    log_info("TiKV serving KV on %s and status on %s (TLS %s, data %s)", d->cfg.addr,
             d->cfg.status_addr, d->cfg.tls ? "on" : "off",
             d->encrypted ? "encrypted" : "not encrypted");
    return 0;
}

static void stop(struct tikv_daemon *d)
{
    tikv_pd_free(d->pd);
    tikv_kv_free(d->kv);     /* before the engine: its pending writes answer into the void */
    replica_close(d->replica); /* runs the loop until Raft has closed */
    tikv_status_free(d->status);
    kv_engine_close(d->engine);
    cipherfile_keys_clear(&d->keys);
    tls_ctx_free(d->server_tls);
    tls_ctx_free(d->client_tls);
    tikv_config_free(&d->cfg);
    daemon_free(&d->proc);
}

int main(int argc, char **argv)
{
    static struct tikv_daemon d;
    char err[1024];
    int rc = tikv_config_load(&d.cfg, argc, argv, err, sizeof err);
    if (rc == 0)
        rc = tikv_config_validate(&d.cfg, err, sizeof err);
    if (rc == 0)
        rc = start(&d, err, sizeof err);
    if (rc == 0 && daemon_run(&d.proc) != 0) {
        snprintf(err, sizeof err, "the event loop failed");
        rc = -1;
    }
    if (rc == 0 && d.refusal[0]) {
        snprintf(err, sizeof err, "%s", d.refusal);
        rc = -1;
    }
    if (rc == 0) {
        log_info("TiKV stopped");
    } else if (rc < 0) {
        fprintf(stderr, "tikv-server: %s\n", err);
        if (d.proc.log_opened && d.cfg.log_file && *d.cfg.log_file && !d.refusal[0])
            log_error("%s", err); /* a refusal is in the log already (tikv_pd) */
    }
    stop(&d);
    return rc < 0 ? 1 : 0;
}
