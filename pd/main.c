/* pd-server: reads flags and config and wires the modules; the daemon module runs the
 * process (log, signals, event loop). */
#include <stdio.h>
#include <time.h>

#include "daemon.h"
#include "http.h"
#include "log.h"
#include "pd_api.h"
#include "pd_config.h"
#include "pd_member.h"
#include "pd_state.h"
#include "tls.h"

struct pd_daemon {
    struct pd_config cfg;
    struct daemon proc;
    struct tls_ctx *server_tls, *client_tls;
    struct pd_state state;
    struct pd_member *member;
    struct pd_api api;
    struct http_server *client_http, *peer_http;
};

static void log_security(const struct pd_config *c)
{
    daemon_log_security(&(struct daemon_security){
        .tls = c->tls,
        .mutual = true,
        .ca_path = c->security.cacert_path,
        .cert_path = c->security.cert_path,
        .cn_key = "cert-allowed-cn",
        .allowed_cn = c->security.cert_allowed_cn.items,
        .n_allowed_cn = c->security.cert_allowed_cn.n,
    });
}

static int make_tls(struct pd_daemon *d, char *err, size_t errlen)
{
    if (!d->cfg.tls)
        return 0;
    struct tls_opts o = {
        .role = "pd",
        .ca_path = d->cfg.security.cacert_path,
        .cert_path = d->cfg.security.cert_path,
        .key_path = d->cfg.security.key_path,
        .allowed_cn = d->cfg.security.cert_allowed_cn.items,
        .n_allowed_cn = d->cfg.security.cert_allowed_cn.n,
        .cn_check = TLS_CN_HANDSHAKE,
    };
    d->server_tls = tls_ctx_new(TLS_SERVER, &o, err, errlen);
    if (!d->server_tls)
        return -1;
    d->client_tls = tls_ctx_new(TLS_CLIENT, &o, err, errlen);
    return d->client_tls ? 0 : -1;
}

static int serve(struct pd_daemon *d, char *err, size_t errlen)
{
    d->client_http = http_server_new(d->proc.base, d->cfg.client_url.host, d->cfg.client_url.port,
                                     d->server_tls, err, errlen);
    if (!d->client_http)
        return -1;
    d->peer_http = http_server_new(d->proc.base, d->cfg.peer_url.host, d->cfg.peer_url.port,
                                   d->server_tls, err, errlen);
    if (!d->peer_http)
        return -1;
    if (pd_api_register(&d->api, d->client_http) != 0 ||
        pd_api_register(&d->api, d->peer_http) != 0 ||
        pd_member_serve_peers(d->member, d->peer_http) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int start(struct pd_daemon *d, char *err, size_t errlen)
{
    struct daemon_opts o = {"pd", d->cfg.log_file, d->cfg.log_level};
    if (daemon_init(&d->proc, &o, err, errlen) != 0)
        return -1;
    if (make_tls(d, err, errlen) != 0)
        return -1;
    log_security(&d->cfg); /* once the files it names have loaded */
    if (pd_state_open(&d->state, d->cfg.data_dir, err, errlen) != 0)
        return -1;
    d->member = pd_member_new(d->proc.base, &d->cfg, &d->state, d->client_tls, err, errlen);
    if (!d->member)
        return -1;
    d->api = (struct pd_api){&d->cfg, &d->state, d->member, (int64_t)time(NULL)};
    if (serve(d, err, errlen) != 0)
        return -1;
    pd_member_start(d->member);
    log_info("PD %s serving clients on %s and peers on %s (TLS %s, %zu member%s)", d->cfg.name,
             d->cfg.client_urls, d->cfg.peer_urls, d->cfg.tls ? "on" : "off", d->cfg.n_members,
             d->cfg.n_members == 1 ? "" : "s");
    return 0;
}

static void stop(struct pd_daemon *d)
{
    pd_member_free(d->member); /* answers what it holds, while the connections exist */
    http_server_free(d->client_http);
    http_server_free(d->peer_http);
    if (d->state.doc)
        pd_state_close(&d->state);
    tls_ctx_free(d->server_tls);
    tls_ctx_free(d->client_tls);
    pd_config_free(&d->cfg);
    daemon_free(&d->proc); /* the event_base, then the log */
}

int main(int argc, char **argv)
{
    static struct pd_daemon d;
    char err[1024];
    int rc = pd_config_load(&d.cfg, argc, argv, err, sizeof err);
    if (rc == 0)
        rc = pd_config_validate(&d.cfg, err, sizeof err);
    if (rc == 0)
        rc = start(&d, err, sizeof err);
    if (rc == 0 && daemon_run(&d.proc) != 0) {
        snprintf(err, sizeof err, "the event loop failed");
        rc = -1;
    }
    if (rc == 0) {
        log_info("PD %s stopped", d.cfg.name);
    } else if (rc < 0) {
        fprintf(stderr, "pd-server: %s\n", err);
        if (d.proc.log_opened && d.cfg.log_file && *d.cfg.log_file)
            log_error("%s", err); /* the log file says why too (stderr already did) */
    }
    stop(&d);
    return rc < 0 ? 1 : 0;
}
