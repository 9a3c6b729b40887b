/* test_tidb_status.c — TiDB's status port driven by the real curl: with cluster-verify-cn set a
 * client certificate of the CA with a listed CN is required (a CN outside the list, no
 * certificate or another CA's certificate fails the handshake); with the list empty no
 * certificate is asked for and anyone is served; /status, /info, /metrics (connections,
 * queries by type and result, handshakes by port and result), /schema, /schema/{db},
 * /schema/{db}/{table} from the daemon's hooks; wrong methods and unknown paths; the real
 * tidb-ctl in the guide's form, served and refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "tidb_config.h"
#include "tidb_status.h"
#include "tls.h"

#define VERSION "8.0.11-TiDB-v7.5.0-tisim"

static char g_dir[200];   /* the cluster PKI; client.pem has CN TiKV-Control */
static char g_other[200]; /* another CA's PKI, same CNs */

struct fixture {
    struct event_base *base;
    struct tls_ctx *tls;
    struct tls_ctx *mysql; /* stands for the MySQL port's ctx in /metrics */
    struct tidb_status *st;
    char url[64];
    char asked[8][64]; /* the db names the schema hook was asked for */
    size_t n_asked;
};

/* ---------------------------------------------------------------------------------------- */
/* The daemon's hooks                                                                        */

static unsigned long three_connections(void *arg)
{
    (void)arg;
    return 3;
}

static json_t *schema_hook(const char *db, void *arg)
{
    struct fixture *f = arg;
    if (!db)
        return json_pack("[{s:i, s:{s:s, s:s}}, {s:i, s:{s:s, s:s}}]", "id", 1, "db_name", "O",
                         "mysql", "L", "mysql", "id", 2, "db_name", "O", "Test", "L", "test");
    if (f->n_asked < 8)
        snprintf(f->asked[f->n_asked++], sizeof f->asked[0], "%s", db);
    if (strcmp(db, "mysql") == 0)
        return json_array();
    if (strcmp(db, "test") == 0)
        return json_pack("[{s:i, s:{s:s, s:s}}, {s:i, s:s}]", "id", 70, "name", "O", "T1", "L",
                         "t1", "id", 71, "name", "plain");
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* The server                                                                                */

static void start(struct fixture *f, const char *const *verify_cn)
{
    char ca[300], cert[300], key[300], err[600];
    memset(f, 0, sizeof *f);
    snprintf(ca, sizeof ca, "%s/ca.pem", g_dir);
    snprintf(cert, sizeof cert, "%s/tidb-server.pem", g_dir);
    snprintf(key, sizeof key, "%s/tidb-server-key.pem", g_dir);
    struct tidb_config c = {.cluster_tls = true};
    c.security.cluster_ssl_ca = ca;
    c.security.cluster_ssl_cert = cert;
    c.security.cluster_ssl_key = key;
    for (size_t i = 0; verify_cn && verify_cn[i]; i++)
        assert_int_equal(cfg_list_add(&c.security.cluster_verify_cn, verify_cn[i]), 0);
    f->base = event_base_new();
    assert_non_null(f->base);
    int rc = tidb_status_tls_new(&c, &f->tls, err, sizeof err);
    cfg_list_free(&c.security.cluster_verify_cn);
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(f->tls);
    f->mysql = tu_tls_ctx(g_dir, TLS_SERVER, "tidb-server", NULL, 0, TLS_CN_HANDSHAKE);
    assert_non_null(f->mysql);
    struct tidb_status_info info = {.version = VERSION, .git_hash = "0123abc", .ip = "127.0.0.1",
                                    .port = 4000, .start_timestamp = 1700000000};
    struct tidb_status_hooks hooks = {.connections = three_connections, .schema = schema_hook,
                                      .arg = f};
    f->st = tidb_status_new(f->base, "127.0.0.1", 0, f->tls, &info, &hooks, err, sizeof err);
    assert_non_null(f->st);
    assert_int_equal(tidb_status_watch_tls(f->st, "mysql", f->mysql), 0);
    assert_int_equal(tidb_status_watch_tls(f->st, "status", f->tls), 0);
    snprintf(f->url, sizeof f->url, "https://127.0.0.1:%d", tidb_status_port(f->st));
}

static void stop(struct fixture *f)
{
    tidb_status_free(f->st);
    tls_ctx_free(f->tls);
    tls_ctx_free(f->mysql);
    event_base_free(f->base);
}

/* ---------------------------------------------------------------------------------------- */
/* curl, run while the loop serves                                                           */

struct curl_run {
    bool done;
    int exit_code;
    size_t len;
    char out[32768]; /* stdout and stderr; ends with "\nHTTP <code>" */
};

static void on_curl_output(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct curl_run *r = arg;
    ssize_t n = read(fd, r->out + r->len, sizeof r->out - 1 - r->len);
    if (n > 0) {
        r->len += (size_t)n;
        r->out[r->len] = '\0';
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        r->done = true;
    }
}

/* Runs argv (argv[0] found on PATH or a path) while the loop serves; its stdout and stderr
 * land in r. */
static void run_cmd(struct fixture *f, struct curl_run *r, const char *const *argv)
{
    memset(r, 0, sizeof *r);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    struct event *ev = event_new(f->base, p[0], EV_READ | EV_PERSIST, on_curl_output, r);
    assert_non_null(ev);
    event_add(ev, NULL);
    while (!r->done)
        event_base_loop(f->base, EVLOOP_ONCE);
    event_free(ev);
    close(p[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs curl with args (NULL-terminated, before the URL) on f->url + path. */
static void curl(struct fixture *f, struct curl_run *r, const char *const *args,
                 const char *path)
{
    char url[256];
    const char *argv[32] = {"curl", "-sS", "--max-time", "30", "-w", "\nHTTP %{http_code}"};
    size_t n = 6;
    for (size_t i = 0; args && args[i] && n < 30; i++)
        argv[n++] = args[i];
    snprintf(url, sizeof url, "%s%s", f->url, path);
    argv[n++] = url;
    argv[n] = NULL;
    run_cmd(f, r, argv);
}

/* The cert options for dir's NAME.pem / NAME-key.pem and dir's CA. */
struct cert_args {
    char ca[300], cert[300], key[300];
    const char *argv[8];
};

static const char *const *with_cert(struct cert_args *a, const char *dir, const char *name)
{
    snprintf(a->ca, sizeof a->ca, "%s/ca.pem", g_dir); /* we always trust our own CA */
    a->argv[0] = "--cacert";
    a->argv[1] = a->ca;
    a->argv[2] = NULL;
    if (!name) /* no client certificate */
        return a->argv;
    snprintf(a->cert, sizeof a->cert, "%s/%s.pem", dir, name);
    snprintf(a->key, sizeof a->key, "%s/%s-key.pem", dir, name);
    a->argv[2] = "--cert";
    a->argv[3] = a->cert;
    a->argv[4] = "--key";
    a->argv[5] = a->key;
    a->argv[6] = NULL;
    return a->argv;
}

static void expect_ok(struct fixture *f, const char *const *args, const char *path,
                      const char *want)
{
    struct curl_run r;
    curl(f, &r, args, path);
    if (r.exit_code != 0)
        print_error("curl %s: exit %d: %s\n", path, r.exit_code, r.out);
    assert_int_equal(r.exit_code, 0);
    assert_contains(r.out, "\nHTTP 200");
    assert_contains(r.out, want);
}

/* The handshake fails: curl gets no HTTP answer at all. */
static void expect_refused(struct fixture *f, const char *const *args)
{
    struct curl_run r;
    curl(f, &r, args, "/status");
    assert_int_not_equal(r.exit_code, 0);
    assert_contains(r.out, "\nHTTP 000");
    assert_null(strstr(r.out, "connections"));
}

static void expect_handshakes(struct fixture *f, const char *const *args, unsigned full,
                              unsigned failed)
{
    char want[400];
    struct curl_run r;
    curl(f, &r, args, "/metrics");
    assert_int_equal(r.exit_code, 0);
    /* This request's own handshake is already counted. */
    snprintf(want, sizeof want,
             "tisim_tls_handshakes_total{port=\"status\",result=\"full\"} %u\n"
             "tisim_tls_handshakes_total{port=\"status\",result=\"resumed\"} 0\n"
             "tisim_tls_handshakes_total{port=\"status\",result=\"failed\"} %u\n",
             full, failed);
    assert_contains(r.out, want);
}

/* ---------------------------------------------------------------------------------------- */
/* Tests                                                                                     */

static void test_verify_cn_set_requires_a_listed_cn(void **state)
{
    (void)state;
    struct fixture f;
    const char *const cns[] = {"TiDB-Server", "TiKV-Control", NULL}; /* the guide's list */
    start(&f, cns);
    struct cert_args a;
    const char *status = "{\"connections\":3,\"version\":\"" VERSION "\",\"git_hash\":\"0123abc\"}";
    /* Listed CNs: tidb-ctl's client cert and TiDB's own. */
    expect_ok(&f, with_cert(&a, g_dir, "client"), "/status", status);
    expect_ok(&f, with_cert(&a, g_dir, "tidb-server"), "/status", status);
    /* A CN of the CA outside the list, no certificate, the right CN from another CA. */
    expect_refused(&f, with_cert(&a, g_dir, "pd-server"));
    expect_refused(&f, with_cert(&a, g_dir, NULL));
    expect_refused(&f, with_cert(&a, g_other, "client"));
    /* Still the listed one afterwards; the counters saw all of it. */
    expect_handshakes(&f, with_cert(&a, g_dir, "client"), 3, 3);
    /* Plain HTTP to the HTTPS port: the transport's 400, nothing served. */
    struct curl_run r;
    snprintf(f.url, sizeof f.url, "http://127.0.0.1:%d", tidb_status_port(f.st));
    curl(&f, &r, NULL, "/status");
    assert_contains(r.out, "Client sent an HTTP request to an HTTPS server");
    assert_contains(r.out, "\nHTTP 400");
    assert_null(strstr(r.out, "connections"));
    stop(&f);
}

static void test_verify_cn_empty_serves_anyone(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, NULL);
    struct cert_args a;
    /* No certificate asked for: none, any CN, another CA's -- all served over TLS. */
    expect_ok(&f, with_cert(&a, g_dir, NULL), "/status", "\"connections\":3");
    expect_ok(&f, with_cert(&a, g_dir, "pd-server"), "/status", "\"connections\":3");
    expect_ok(&f, with_cert(&a, g_other, "client"), "/status", "\"connections\":3");
    expect_handshakes(&f, with_cert(&a, g_dir, NULL), 4, 0);
    /* It is TLS with the cluster cert: a client not trusting the CA gives up. */
    struct curl_run r;
    char other_ca[300];
    snprintf(other_ca, sizeof other_ca, "%s/ca.pem", g_other);
    const char *untrusting[] = {"--cacert", other_ca, NULL};
    curl(&f, &r, untrusting, "/status");
    assert_int_not_equal(r.exit_code, 0);
    assert_contains(r.out, "\nHTTP 000");
    stop(&f);
}

static void test_info(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, NULL);
    struct cert_args a;
    struct curl_run r;
    curl(&f, &r, with_cert(&a, g_dir, NULL), "/info");
    assert_int_equal(r.exit_code, 0);
    assert_contains(r.out, "\nHTTP 200");
    json_error_t jerr;
    json_t *j = json_loadb(r.out, strlen(r.out) - strlen("\nHTTP 200"), 0, &jerr);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "is_owner")));
    assert_string_equal(json_string_value(json_object_get(j, "version")), VERSION);
    assert_string_equal(json_string_value(json_object_get(j, "git_hash")), "0123abc");
    const char *ddl_id = json_string_value(json_object_get(j, "ddl_id"));
    assert_non_null(ddl_id);
    assert_int_equal(strlen(ddl_id), 36);
    assert_int_equal(ddl_id[14], '4'); /* a version 4 UUID */
    assert_string_equal(json_string_value(json_object_get(j, "ip")), "127.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(j, "listening_port")), 4000);
    assert_int_equal(json_integer_value(json_object_get(j, "status_port")),
                     tidb_status_port(f.st));
    assert_string_equal(json_string_value(json_object_get(j, "lease")), "45s");
    assert_string_equal(json_string_value(json_object_get(j, "binlog_status")), "Off");
    assert_int_equal(json_integer_value(json_object_get(j, "start_timestamp")), 1700000000);
    assert_true(json_is_object(json_object_get(j, "labels")));
    json_decref(j);
    stop(&f);
}

struct counting {
    struct tidb_status *st;
    int n;
};

static void *count_selects(void *arg)
{
    struct counting *c = arg;
    for (int i = 0; i < c->n; i++)
        tidb_status_count_query(c->st, "Select", true);
    return NULL;
}

static void test_metrics(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, NULL);
    /* Session workers count from their own threads. */
    pthread_t t[4];
    struct counting c = {f.st, 500};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, count_selects, &c), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    tidb_status_count_query(f.st, "Insert", true);
    tidb_status_count_query(f.st, "Insert", false);
    tidb_status_count_query(f.st, "Insert\"} 99\nx", true); /* not a type: "other" */
    tidb_status_count_query(f.st, "A23456789012345678901234567890123", false); /* too long */
    char type[16] = "Update"; /* the caller's buffer: copied, not kept */
    tidb_status_count_query(f.st, type, true);
    snprintf(type, sizeof type, "Garbage");
    struct cert_args a;
    struct curl_run r;
    curl(&f, &r, with_cert(&a, g_dir, NULL), "/metrics");
    assert_int_equal(r.exit_code, 0);
    assert_contains(r.out, "# TYPE tidb_server_connections gauge\ntidb_server_connections 3\n");
    assert_contains(r.out, "# TYPE tidb_server_query_total counter\n");
    assert_contains(r.out, "tidb_server_query_total{result=\"OK\",type=\"Select\"} 2000\n");
    assert_contains(r.out, "tidb_server_query_total{result=\"OK\",type=\"Insert\"} 1\n");
    assert_contains(r.out, "tidb_server_query_total{result=\"Error\",type=\"Insert\"} 1\n");
    assert_contains(r.out, "tidb_server_query_total{result=\"OK\",type=\"other\"} 1\n");
    assert_contains(r.out, "tidb_server_query_total{result=\"Error\",type=\"other\"} 1\n");
    assert_contains(r.out, "tidb_server_query_total{result=\"OK\",type=\"Update\"} 1\n");
    assert_null(strstr(r.out, "Garbage"));
    assert_null(strstr(r.out, "99"));
    assert_null(strstr(r.out, "result=\"Error\",type=\"Select\""));
    assert_contains(r.out, "tisim_tls_handshakes_total{port=\"mysql\",result=\"full\"} 0\n");
    assert_contains(r.out, "tisim_tls_handshakes_total{port=\"status\",result=\"full\"} 1\n");
    stop(&f);
}

static void test_schema(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, NULL);
    struct cert_args a;
    const char *const *args = with_cert(&a, g_dir, NULL);
    expect_ok(&f, args, "/schema", "\"L\": \"test\"");
    expect_ok(&f, args, "/schema", "\"O\": \"mysql\"");
    expect_ok(&f, args, "/schema/mysql", "[]");
    expect_ok(&f, args, "/schema/test", "\"id\": 71");
    /* One table, by its name, case-insensitively; the plain-string name form too. */
    struct curl_run r;
    curl(&f, &r, args, "/schema/test/T1");
    assert_contains(r.out, "\"id\": 70");
    assert_null(strstr(r.out, "\"id\": 71"));
    expect_ok(&f, args, "/schema/test/t1", "\"id\": 70");
    expect_ok(&f, args, "/schema/test/PLAIN", "\"id\": 71");
    /* Names are percent-decoded before the hook sees them. */
    expect_ok(&f, args, "/schema/t%65st", "\"id\": 70");
    assert_string_equal(f.asked[f.n_asked - 1], "test");

    static const struct {
        const char *path, *want;
    } missing[] = {
        {"/schema/nope", "[schema:1049]Unknown database 'nope'"},
        {"/schema/test/nope", "[schema:1146]Table 'test.nope' doesn't exist"},
        {"/schema/test/t1/x", "no such API"},
        {"/schema/test/", "no such API"},
        {"/schema/te%00st", "no such API"},
        {"/schema/%zz", "Unknown database '%zz'"}, /* left as it is, as evhttp does */
        {"/nope", ""},
    };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        curl(&f, &r, args, missing[i].path);
        if (!strstr(r.out, "\nHTTP 404"))
            print_error("%s: %s\n", missing[i].path, r.out);
        assert_contains(r.out, "\nHTTP 404");
        assert_contains(r.out, missing[i].want);
    }
    /* The hook was never asked for a malformed name. */
    for (size_t i = 0; i < f.n_asked; i++)
        assert_true(strcmp(f.asked[i], "test") == 0 || strcmp(f.asked[i], "mysql") == 0 ||
                    strcmp(f.asked[i], "nope") == 0 || strcmp(f.asked[i], "%zz") == 0);
    /* GET only. */
    const char *post[] = {"--cacert", a.ca, "-X", "POST", NULL};
    curl(&f, &r, post, "/status");
    assert_contains(r.out, "\nHTTP 405");
    curl(&f, &r, post, "/schema/test");
    assert_contains(r.out, "\nHTTP 405");
    stop(&f);
}

static void test_plain_http_without_cluster_tls(void **state)
{
    (void)state;
    struct tidb_config c = {0};
    struct tls_ctx *ctx = (struct tls_ctx *)&c; /* must be reset to NULL */
    char err[300];
    assert_int_equal(tidb_status_tls_new(&c, &ctx, err, sizeof err), 0);
    assert_null(ctx);
    struct fixture f = {0};
    f.base = event_base_new();
    struct tidb_status_info info = {.version = VERSION, .port = 4000};
    f.st = tidb_status_new(f.base, "127.0.0.1", 0, NULL, &info, NULL, err, sizeof err);
    assert_non_null(f.st);
    snprintf(f.url, sizeof f.url, "http://127.0.0.1:%d", tidb_status_port(f.st));
    struct curl_run r;
    curl(&f, &r, NULL, "/status");
    assert_contains(r.out, "{\"connections\":0,\"version\":\"" VERSION "\",\"git_hash\":\"\"}");
    curl(&f, &r, NULL, "/schema");
    assert_contains(r.out, "\nHTTP 404");
    tidb_status_free(f.st);
    event_base_free(f.base);

    /* A bad cluster set fails in tls_ctx_new, naming the file. */
    c.cluster_tls = true;
    c.security.cluster_ssl_ca = "/nonexistent/ca.pem";
    c.security.cluster_ssl_cert = "/nonexistent/c.pem";
    c.security.cluster_ssl_key = "/nonexistent/k.pem";
    assert_int_equal(tidb_status_tls_new(&c, &ctx, err, sizeof err), -1);
    assert_null(ctx);
    assert_contains(err, "/nonexistent/");
}

/* The real tidb-ctl (ctest's TISIM_BIN) against this port, in the guide's form. */
static void tidb_ctl(struct fixture *f, struct curl_run *r, const char *cert, const char *cmd)
{
    char bin[300], ca[300], c[300], k[300];
    const char *dir = getenv("TISIM_BIN");
    snprintf(bin, sizeof bin, "%s/tidb-ctl", dir ? dir : "bin");
    snprintf(ca, sizeof ca, "%s/ca.pem", g_dir);
    snprintf(c, sizeof c, "%s/%s.pem", g_dir, cert);
    snprintf(k, sizeof k, "%s/%s-key.pem", g_dir, cert);
    const char *argv[] = {bin, "-u", f->url, "--ca", ca, "--ssl-cert", c, "--ssl-key", k, cmd,
                          NULL};
    run_cmd(f, r, argv);
    if (r->exit_code == 127)
        print_error("cannot run %s (ctest sets TISIM_BIN to the build's bin/)\n", bin);
}

static void test_tidb_ctl(void **state)
{
    (void)state;
    struct fixture f;
    const char *const cns[] = {"TiDB-Server", "TiKV-Control", NULL};
    start(&f, cns);
    struct curl_run r;
    tidb_ctl(&f, &r, "client", NULL);
    if (r.exit_code != 0)
        print_error("tidb-ctl: %s\n", r.out);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "{\n    \"connections\": 3,\n    \"version\": \"" VERSION
                               "\",\n    \"git_hash\": \"0123abc\"\n}\n");
    tidb_ctl(&f, &r, "client", "schema");
    assert_int_equal(r.exit_code, 0);
    assert_contains(r.out, "\"L\": \"test\"");
    /* A CN outside cluster-verify-cn: refused, one line saying so. */
    tidb_ctl(&f, &r, "pd-server", NULL);
    assert_int_equal(r.exit_code, 1);
    assert_contains(r.out, "tidb-ctl: ");
    assert_contains(r.out, "the server refused our certificate: its Common Name is not in the "
                           "server's allow-list");
    assert_true(strchr(r.out, '\n') == r.out + strlen(r.out) - 1);
    stop(&f);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    log_open("test", NULL, LOG_ERROR);
    if (tu_pki_dir(g_dir, sizeof g_dir, "tidb-status", "TiKV-Control") != 0)
        return -1;
    return tu_pki_dir(g_other, sizeof g_other, "tidb-status-other", "TiKV-Control");
}

static int group_teardown(void **state)
{
    (void)state;
    tu_rm_rf(g_dir);
    tu_rm_rf(g_other);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_cn_set_requires_a_listed_cn),
        cmocka_unit_test(test_verify_cn_empty_serves_anyone),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_schema),
        cmocka_unit_test(test_plain_http_without_cluster_tls),
        cmocka_unit_test(test_tidb_ctl),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
