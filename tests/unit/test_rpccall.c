/* test_rpccall.c — the ctl tools' blocking RPC call against a real mutual-TLS RPC server (in a
 * child process, since the call runs its own event loop): a served call, a CN refused with
 * TiKV's sentence, a server that does not trust us, and nobody listening. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "certgen.h"
#include "log.h"
#include "rpc.h"
#include "rpccall.h"
#include "testutil.h"
#include "tls.h"

static char g_dir[200];
static pid_t g_child;
static int g_port;
static char *g_allowed[] = {"TiKV-Control", "PD-Server"};

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", g_dir, name);
}

static void h_get(struct rpc_call *call, const struct rpc_frame *req, void *arg)
{
    (void)arg;
    if (req->nfields == 1 && req->fields[0].len == 3 && memcmp(req->fields[0].data, "key", 3) == 0) {
        struct rpc_buf v = {"value", 5};
        rpc_reply(call, RPC_OK, NULL, &v, 1);
    } else {
        rpc_reply(call, RPC_NOT_FOUND, "key not found", NULL, 0);
    }
}

static enum rpc_status cn_hook(const struct conn_peer *peer, const struct rpc_frame *req,
                               void *arg, char *msg, size_t msglen)
{
    (void)req;
    (void)arg;
    if (peer->cn_allowed)
        return RPC_OK;
    rpc_cn_refusal(msg, msglen, peer->cn, g_allowed, 2);
    return RPC_UNAUTHENTICATED;
}

/* The child: a TiKV-like server on a free port, which it writes to fd. */
static void serve(int fd)
{
    char ca[300], cert[300], key[300], err[512];
    path_of(ca, sizeof ca, "ca.pem");
    path_of(cert, sizeof cert, "tikv-server.pem");
    path_of(key, sizeof key, "tikv-server-key.pem");
    struct tls_opts o = {.role = "tikv", .ca_path = ca, .cert_path = cert, .key_path = key,
                         .allowed_cn = g_allowed, .n_allowed_cn = 2,
                         .cn_check = TLS_CN_SERVICE};
    struct event_base *base = event_base_new();
    struct tls_ctx *tls = tls_ctx_new(TLS_SERVER, &o, err, sizeof err);
    struct rpc_method m[] = {{"raw_get", h_get, NULL}};
    struct rpc_server_opts so = {.methods = m, .n_methods = 1, .hook = cn_hook};
    struct rpc_server *srv = base && tls ? rpc_server_new(base, &so) : NULL;
    int port = -1;
    if (srv && rpc_server_listen(srv, "127.0.0.1", 0, tls, err, sizeof err) == 0)
        port = rpc_server_port(srv);
    if (write(fd, &port, sizeof port) != sizeof port || port < 0)
        _exit(1);
    event_base_dispatch(base);
    _exit(0);
}

static int group_setup(void **state)
{
    (void)state;
    char err[256];
    signal(SIGPIPE, SIG_IGN);
    log_open("test", NULL, LOG_ERROR);
    snprintf(g_dir, sizeof g_dir, "/tmp/tisim-test-rpccall-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    struct certgen_pki_opts o = {.client_cn = "TiKV-Control"};
    int fds[2];
    if (certgen_pki(g_dir, &o, err, sizeof err) != 0 || pipe(fds) != 0)
        return -1;
    g_child = fork();
    if (g_child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(fds[0]);
        serve(fds[1]);
    }
    close(fds[1]);
    if (g_child < 0 || read(fds[0], &g_port, sizeof g_port) != sizeof g_port || g_port <= 0)
        return -1;
    close(fds[0]);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_child > 0) {
        kill(g_child, SIGKILL);
        waitpid(g_child, NULL, 0);
    }
    if (g_dir[0])
        tu_rm_rf(g_dir);
    return 0;
}

struct files {
    char ca[300], cert[300], key[300];
    struct rpccall_tls tls;
};

static void files_for(struct files *f, const char *who)
{
    char name[80];
    path_of(f->ca, sizeof f->ca, "ca.pem");
    snprintf(name, sizeof name, "%s.pem", who);
    path_of(f->cert, sizeof f->cert, name);
    snprintf(name, sizeof name, "%s-key.pem", who);
    path_of(f->key, sizeof f->key, name);
    f->tls = (struct rpccall_tls){f->ca, f->cert, f->key};
}

static int get(const char *who, const char *key, struct rpc_frame **resp, char *err,
               size_t errlen)
{
    struct files f;
    files_for(&f, who);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", g_port);
    struct rpc_buf k = {key, strlen(key)};
    return rpccall(addr, "raw_get", &k, 1, &f.tls, "tikv-ctl", 5000, resp, err, errlen);
}

static void test_served(void **state)
{
    (void)state;
    struct rpc_frame *r;
    char err[512], msg[256];
    assert_int_equal(get("client", "key", &r, err, sizeof err), 0);
    assert_int_equal(r->status, RPC_OK);
    assert_int_equal(r->nfields, 1);
    assert_memory_equal(r->fields[0].data, "value", 5);
    rpc_frame_free(r);
    assert_int_equal(get("client", "other", &r, err, sizeof err), 0);
    assert_int_equal(r->status, RPC_NOT_FOUND);
    rpc_frame_message(r, msg, sizeof msg);
    assert_string_equal(msg, "key not found");
    rpc_frame_free(r);
}

/* TiDB-Server is not in the list: the answer is TiKV's sentence; the listed CN is served. */
static void test_cn_refused(void **state)
{
    (void)state;
    struct rpc_frame *r;
    char err[512], msg[512];
    assert_int_equal(get("tidb-server", "key", &r, err, sizeof err), 0);
    assert_int_equal(r->status, RPC_UNAUTHENTICATED);
    rpc_frame_message(r, msg, sizeof msg);
    assert_string_equal(msg, "Common name check fail, reason: x509_common_name from peer is "
                             "TiDB-Server, cert_allowed_cn: {\"TiKV-Control\", \"PD-Server\"}");
    rpc_frame_free(r);
    assert_int_equal(get("client", "key", &r, err, sizeof err), 0);
    assert_int_equal(r->status, RPC_OK);
    rpc_frame_free(r);
}

/* A CA that did not sign the server: the transport's words. */
static void test_untrusted_server(void **state)
{
    (void)state;
    char dir[240], err[512];
    snprintf(dir, sizeof dir, "%s/other", g_dir);
    assert_int_equal(certgen_pki(dir, NULL, err, sizeof err), 0);
    struct files f;
    files_for(&f, "client");
    snprintf(f.ca, sizeof f.ca, "%s/ca.pem", dir);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", g_port);
    struct rpc_frame *r;
    assert_int_equal(rpccall(addr, "raw_get", NULL, 0, &f.tls, "tikv-ctl", 5000, &r, err,
                             sizeof err), -1);
    assert_null(r);
    assert_contains(err, "not trusted");
}

static void test_connection_refused(void **state)
{
    (void)state;
    struct files f; /* port 1: nobody listens there (it would need root) */
    files_for(&f, "client");
    char err[512];
    struct rpc_frame *r;
    /* plaintext and TLS alike */
    assert_int_equal(rpccall("127.0.0.1:1", "raw_get", NULL, 0, NULL, "tikv-ctl", 5000, &r,
                             err, sizeof err), -1);
    assert_string_equal(err, "cannot connect to 127.0.0.1:1: Connection refused");
    assert_int_equal(rpccall("127.0.0.1:1", "raw_get", NULL, 0, &f.tls, "tikv-ctl", 5000, &r,
                             err, sizeof err), -1);
    assert_string_equal(err, "cannot connect to 127.0.0.1:1: Connection refused");
    /* an https:// address without a CA is refused before anything is sent */
    assert_int_equal(rpccall("https://127.0.0.1:1", "raw_get", NULL, 0, NULL, "tikv-ctl", 5000,
                             &r, err, sizeof err), -1);
    assert_string_equal(err, "an https:// address needs a CA (--ca-path)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_served),
        cmocka_unit_test(test_cn_refused),
        cmocka_unit_test(test_untrusted_server),
        cmocka_unit_test(test_connection_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
