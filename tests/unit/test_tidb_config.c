/* test_tidb_config.c — tidb-server's configuration: defaults, flags win over the file, the TLS
 * guide's TiDB [security] snippets load verbatim (the multi-line cluster-verify-cn too), the
 * cluster set is all or nothing, ssl-cert/ssl-key go together, ssl-ca alone and
 * require-secure-transport without client TLS are refused, TLS files must be readable
 * regular files, --store is tikv, PD endpoints follow cluster TLS, ports and hosts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include "tidb_config.h"

static char g_dir[200];       /* the cluster PKI: ca.pem, tidb-server.pem, ... */
static char conf_path[300];

/* Writes text to a fresh config file, every "/path/to" replaced by g_dir (the guide's
 * placeholder paths become real files). */
static void write_conf(const char *text)
{
    snprintf(conf_path, sizeof conf_path, "%s/tidb.XXXXXX", g_dir);
    int fd = mkstemp(conf_path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    for (const char *p = text; *p;) {
        if (strncmp(p, "/path/to", 8) == 0) {
            fputs(g_dir, f);
            p += 8;
        } else {
            fputc(*p++, f);
        }
    }
    assert_int_equal(fclose(f), 0);
}

static int remove_conf(void **state)
{
    (void)state;
    if (conf_path[0])
        unlink(conf_path);
    conf_path[0] = '\0';
    return 0;
}

/* Loads and validates argv (NULL-terminated, without the program name). */
static int load(struct tidb_config *c, const char *const *args, char *err, size_t errlen)
{
    char *argv[32] = {"tidb-server"};
    int argc = 1;
    for (; args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    err[0] = '\0';
    int rc = tidb_config_load(c, argc, argv, err, errlen);
    return rc == 0 ? tidb_config_validate(c, err, errlen) : rc;
}

/* Loads conf (written as by write_conf) with args after "--config FILE"; returns the result. */
static int load_conf(struct tidb_config *c, const char *conf, const char *const *args, char *err,
                     size_t errlen)
{
    const char *all[16] = {"--config", NULL};
    remove_conf(NULL);
    write_conf(conf);
    all[1] = conf_path;
    size_t n = 2;
    for (size_t i = 0; args[i] && n < 15; i++)
        all[n++] = args[i];
    all[n] = NULL;
    return load(c, all, err, errlen);
}

static void expect_refused(const char *conf, const char *const *args, const char *want)
{
    struct tidb_config c;
    char err[600];
    int rc = load_conf(&c, conf, args, err, sizeof err);
    if (rc != -1)
        print_error("expected a refusal with \"%s\"\n", want);
    assert_int_equal(rc, -1);
    assert_contains(err, want);
    assert_null(strchr(err, '\n'));
    tidb_config_free(&c);
}

/* TiDB's guide "Enable TLS Authentication and Encrypt the Stored Data": its TiDB [security]
 * snippet for the certificates, verbatim. */
static const char guide_cluster_snippet[] =
    "[security]\n"
    "# Path of file that contains list of trusted SSL CAs for connection with cluster "
    "components.\n"
    "cluster-ssl-ca = \"/path/to/ca.pem\"\n"
    "# Path of file that contains X509 certificate in PEM format for connection with cluster "
    "components.\n"
    "cluster-ssl-cert = \"/path/to/tidb-server.pem\"\n"
    "# Path of file that contains X509 key in PEM format for connection with cluster "
    "components.\n"
    "cluster-ssl-key = \"/path/to/tidb-server-key.pem\"\n";

/* ... and its TiDB snippet for the Common Names, verbatim (below its own [security] line). */
static const char guide_verify_cn_snippet[] =
    "cluster-verify-cn = [\n"
    "    \"TiDB-Server\",\n"
    "    \"TiKV-Control\",\n"
    "]\n";

static const char *const pd_https[] = {"--path", "https://127.0.0.1:2379", NULL};
static const char *const pd_plain[] = {"--path", "127.0.0.1:2379", NULL};

static void test_defaults(void **state)
{
    (void)state;
    struct tidb_config c;
    char err[600];
    assert_int_equal(load(&c, pd_plain, err, sizeof err), 0);
    assert_string_equal(c.store, "tikv");
    assert_string_equal(c.host, "127.0.0.1");
    assert_string_equal(c.status_host, "127.0.0.1");
    assert_int_equal(c.port, 4000);
    assert_int_equal(c.status_port, 10080);
    assert_false(c.cluster_tls);
    assert_false(c.client_tls);
    assert_false(c.client_verify);
    assert_false(c.security.require_secure_transport);
    assert_int_equal(c.level, LOG_INFO);
    assert_null(c.log_file);
    /* Without cluster TLS a scheme-less endpoint means http. */
    assert_int_equal(c.n_pd, 1);
    assert_string_equal(c.pd_urls[0].scheme, "http");
    assert_int_equal(c.pd_urls[0].port, 2379);
    tidb_config_free(&c);
}

static void test_flags_win_over_the_file(void **state)
{
    (void)state;
    const char *conf = "store = \"tikv\"\npath = \"127.0.0.1:1111\"\nhost = \"0.0.0.0\"\n"
                       "port = 5000\n[status]\nstatus-host = \"::1\"\nstatus-port = 15080\n"
                       "[log]\nlevel = \"warn\"\n[log.file]\nfilename = \"/tmp/tidb.log\"\n";
    struct tidb_config c;
    char err[600];
    const char *flags[] = {"-P", "4001", "--status=10081", "--path",
                           "127.0.0.1:2222, 127.0.0.1:2223", "-L", "debug", NULL};
    assert_int_equal(load_conf(&c, conf, flags, err, sizeof err), 0);
    assert_int_equal(c.port, 4001);
    assert_int_equal(c.status_port, 10081);
    assert_int_equal(c.n_pd, 2);
    assert_int_equal(c.pd_urls[1].port, 2223);
    assert_int_equal(c.level, LOG_DEBUG);
    /* What no flag sets comes from the file. */
    assert_string_equal(c.host, "0.0.0.0");
    assert_string_equal(c.status_host, "::1");
    assert_string_equal(c.log_file, "/tmp/tidb.log");
    tidb_config_free(&c);

    /* Without flags the file's values stand; -P=N and --host=X forms work too. */
    const char *none[] = {NULL};
    assert_int_equal(load_conf(&c, conf, none, err, sizeof err), 0);
    assert_int_equal(c.port, 5000);
    assert_int_equal(c.status_port, 15080);
    assert_int_equal(c.pd_urls[0].port, 1111);
    assert_int_equal(c.level, LOG_WARN);
    tidb_config_free(&c);
    const char *eq[] = {"-P=4100", "--host=127.0.0.2", NULL};
    assert_int_equal(load_conf(&c, conf, eq, err, sizeof err), 0);
    assert_int_equal(c.port, 4100);
    assert_string_equal(c.host, "127.0.0.2");
    tidb_config_free(&c);
}

static void test_guide_snippets_load_verbatim(void **state)
{
    (void)state;
    char conf[2048], want[300];
    snprintf(conf, sizeof conf, "%s%s", guide_cluster_snippet, guide_verify_cn_snippet);
    struct tidb_config c;
    char err[600];
    int rc = load_conf(&c, conf, pd_https, err, sizeof err);
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_true(c.cluster_tls);
    assert_false(c.client_tls);
    snprintf(want, sizeof want, "%s/ca.pem", g_dir);
    assert_string_equal(c.security.cluster_ssl_ca, want);
    snprintf(want, sizeof want, "%s/tidb-server.pem", g_dir);
    assert_string_equal(c.security.cluster_ssl_cert, want);
    snprintf(want, sizeof want, "%s/tidb-server-key.pem", g_dir);
    assert_string_equal(c.security.cluster_ssl_key, want);
    assert_int_equal(c.security.cluster_verify_cn.n, 2);
    assert_string_equal(c.security.cluster_verify_cn.items[0], "TiDB-Server");
    assert_string_equal(c.security.cluster_verify_cn.items[1], "TiKV-Control");
    assert_false(cfg_list_contains(&c.security.cluster_verify_cn, "PD-Server"));
    /* With cluster TLS on, host:port means https. */
    tidb_config_free(&c);
    const char *bare[] = {"--path", "127.0.0.1:2379,https://127.0.0.1:2381", NULL};
    assert_int_equal(load_conf(&c, conf, bare, err, sizeof err), 0);
    assert_int_equal(c.n_pd, 2);
    assert_string_equal(c.pd_urls[0].scheme, "https");
    assert_string_equal(c.pd_urls[1].scheme, "https");
    tidb_config_free(&c);

    /* The one-line form of the list loads the same. */
    snprintf(conf, sizeof conf, "%scluster-verify-cn = [\"TiDB-Server\", \"TiKV-Control\"]\n",
             guide_cluster_snippet);
    assert_int_equal(load_conf(&c, conf, pd_https, err, sizeof err), 0);
    assert_int_equal(c.security.cluster_verify_cn.n, 2);
    assert_string_equal(c.security.cluster_verify_cn.items[1], "TiKV-Control");
    tidb_config_free(&c);
}

static void test_cluster_set_is_all_or_nothing(void **state)
{
    (void)state;
    static const struct {
        const char *conf, *missing;
    } cases[] = {
        {"[security]\ncluster-ssl-ca = \"/path/to/ca.pem\"\n"
         "cluster-ssl-cert = \"/path/to/tidb-server.pem\"\n",
         "cluster-ssl-key"},
        {"[security]\ncluster-ssl-cert = \"/path/to/tidb-server.pem\"\n"
         "cluster-ssl-key = \"/path/to/tidb-server-key.pem\"\n",
         "cluster-ssl-ca"},
        {"[security]\ncluster-ssl-ca = \"/path/to/ca.pem\"\n"
         "cluster-ssl-key = \"/path/to/tidb-server-key.pem\"\n",
         "cluster-ssl-cert"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "[security] %s is not set", cases[i].missing);
        expect_refused(cases[i].conf, pd_https, want);
    }
    /* A list that would check nothing is refused, not ignored. */
    expect_refused("[security]\ncluster-verify-cn = [\"TiDB-Server\"]\n", pd_plain,
                   "[security] cluster-verify-cn is set but cluster TLS is off");
    /* All three: cluster TLS on. */
    struct tidb_config c;
    char err[600];
    assert_int_equal(load_conf(&c, guide_cluster_snippet, pd_https, err, sizeof err), 0);
    assert_true(c.cluster_tls);
    assert_int_equal(c.security.cluster_verify_cn.n, 0);
    tidb_config_free(&c);
}

/* The client side, as TiDB's "Enable TLS between TiDB Clients and Servers" configures it. */
static void test_client_tls_rules(void **state)
{
    (void)state;
    expect_refused("[security]\nssl-cert = \"/path/to/tidb-server.pem\"\n", pd_plain,
                   "[security] ssl-key is not set: ssl-cert and ssl-key must be set together");
    expect_refused("[security]\nssl-key = \"/path/to/tidb-server-key.pem\"\n", pd_plain,
                   "[security] ssl-cert is not set");
    expect_refused("[security]\nssl-ca = \"/path/to/ca.pem\"\n", pd_plain,
                   "[security] ssl-ca is set without ssl-cert and ssl-key");
    expect_refused("[security]\nrequire-secure-transport = true\n", pd_plain,
                   "[security] require-secure-transport = true needs ssl-cert and ssl-key");
    expect_refused("[security]\nssl-ca = \"/path/to/ca.pem\"\nrequire-secure-transport = true\n",
                   pd_plain, "ssl-ca is set without ssl-cert and ssl-key");
    expect_refused("[security]\nrequire-secure-transport = \"yes\"\n", pd_plain,
                   "require-secure-transport");

    /* One-way: cert and key. */
    struct tidb_config c;
    char err[600];
    const char *one_way = "[security]\nssl-cert = \"/path/to/tidb-server.pem\"\n"
                          "ssl-key = \"/path/to/tidb-server-key.pem\"\n";
    assert_int_equal(load_conf(&c, one_way, pd_plain, err, sizeof err), 0);
    assert_true(c.client_tls);
    assert_false(c.client_verify);
    assert_false(c.cluster_tls);
    tidb_config_free(&c);
    /* Mutual, required: + ssl-ca and require-secure-transport. */
    const char *mutual = "[security]\nssl-ca = \"/path/to/ca.pem\"\n"
                         "ssl-cert = \"/path/to/tidb-server.pem\"\n"
                         "ssl-key = \"/path/to/tidb-server-key.pem\"\n"
                         "require-secure-transport = true\n";
    assert_int_equal(load_conf(&c, mutual, pd_plain, err, sizeof err), 0);
    assert_true(c.client_tls);
    assert_true(c.client_verify);
    assert_true(c.security.require_secure_transport);
    tidb_config_free(&c);
}

static void test_tls_files_must_be_readable(void **state)
{
    (void)state;
    char want[400];
    snprintf(want, sizeof want, "[security] cluster-ssl-key %s/nope-key.pem: No such file",
             g_dir);
    expect_refused("[security]\ncluster-ssl-ca = \"/path/to/ca.pem\"\n"
                   "cluster-ssl-cert = \"/path/to/tidb-server.pem\"\n"
                   "cluster-ssl-key = \"/path/to/nope-key.pem\"\n",
                   pd_https, want);
    snprintf(want, sizeof want, "[security] ssl-ca %s: not a regular file", g_dir);
    expect_refused("[security]\nssl-ca = \"/path/to\"\nssl-cert = \"/path/to/tidb-server.pem\"\n"
                   "ssl-key = \"/path/to/tidb-server-key.pem\"\n",
                   pd_plain, want);
    snprintf(want, sizeof want, "[security] ssl-cert %s/client.pm: No such file", g_dir);
    expect_refused("[security]\nssl-cert = \"/path/to/client.pm\"\n"
                   "ssl-key = \"/path/to/client-key.pem\"\n",
                   pd_plain, want);
    /* The same keys with files that exist. */
    struct tidb_config c;
    char err[600];
    assert_int_equal(load_conf(&c,
                               "[security]\nssl-cert = \"/path/to/client.pem\"\n"
                               "ssl-key = \"/path/to/client-key.pem\"\n",
                               pd_plain, err, sizeof err),
                     0);
    tidb_config_free(&c);
}

static void test_store_is_tikv(void **state)
{
    (void)state;
    const char *none = "";
    const char *unistore[] = {"--store", "unistore", "--path", "127.0.0.1:2379", NULL};
    const char *mocktikv[] = {"--store=mocktikv", "--path", "127.0.0.1:2379", NULL};
    const char *other[] = {"--store", "badger", "--path", "127.0.0.1:2379", NULL};
    expect_refused(none, unistore,
                   "--store unistore: tisim has no embedded store; use --store tikv");
    expect_refused(none, mocktikv, "--store mocktikv: tisim has no embedded store");
    expect_refused(none, other, "--store 'badger': unknown store, use tikv");
    expect_refused("store = \"unistore\"\n", pd_plain, "--store unistore");
    struct tidb_config c;
    char err[600];
    const char *tikv[] = {"--store", "tikv", "--path", "127.0.0.1:2379", NULL};
    assert_int_equal(load(&c, tikv, err, sizeof err), 0);
    tidb_config_free(&c);
}

static void test_pd_endpoints_follow_cluster_tls(void **state)
{
    (void)state;
    const char *none = "";
    expect_refused(none, pd_https,
                   "--path https://127.0.0.1:2379: https needs cluster TLS, set [security] "
                   "cluster-ssl-ca");
    const char *http_with_tls[] = {"--path", "https://127.0.0.1:2379,http://127.0.0.1:2381", NULL};
    expect_refused(guide_cluster_snippet, http_with_tls,
                   "--path http://127.0.0.1:2381: cluster TLS is on");
    const char *no_path[] = {NULL};
    expect_refused(none, no_path, "--path is not set: give the PD endpoints");
    const char *blank[] = {"--path", " , ", NULL};
    expect_refused(none, blank, "--path is not set");
    const char *bad_port[] = {"--path", "127.0.0.1:99999", NULL};
    expect_refused(none, bad_port, "--path: bad URL '127.0.0.1:99999'");
    const char *with_path[] = {"--path", "http://127.0.0.1:2379/pd", NULL};
    expect_refused(none, with_path, "a PD endpoint has no path");
    /* The good case of the same setup: http without TLS. */
    struct tidb_config c;
    char err[600];
    const char *http[] = {"--path", "http://127.0.0.1:2379", NULL};
    assert_int_equal(load(&c, http, err, sizeof err), 0);
    assert_string_equal(c.pd_urls[0].scheme, "http");
    tidb_config_free(&c);
}

static void test_ports_hosts_and_flags(void **state)
{
    (void)state;
    static const struct {
        const char *conf;
        const char *args[6];
        const char *want;
    } cases[] = {
        {"", {"-P", "0", NULL}, "-P '0': give a port number from 1 to 65535"},
        {"", {"-P", "65536", NULL}, "-P '65536'"},
        {"", {"-P", "40x0", NULL}, "-P '40x0'"},
        {"", {"--status", "", NULL}, "--status '': give a port number"},
        {"port = 70000\n", {NULL}, "-P (port) 70000: give a port number from 1 to 65535"},
        {"[status]\nstatus-port = -1\n", {NULL}, "--status ([status] status-port) -1"},
        {"", {"-P", "4000", "--status", "4000", NULL}, "-P and --status are both 4000"},
        {"", {"--host", "", NULL}, "--host is empty"},
        {"", {"--host", "http://0.0.0.0", NULL}, "--host 'http://0.0.0.0': give an IP address"},
        {"", {"--status-host", "127.0.0.1:10080", NULL}, "--status-host '127.0.0.1:10080'"},
        {"", {"-L", "loud", NULL}, "--log-level 'loud'"},
        {"", {"--bogus", NULL}, "unknown flag --bogus"},
        {"", {"extra", NULL}, "unexpected argument 'extra'"},
        {"port = \"4000\"\n", {NULL}, ":1: "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[10] = {"--path", "127.0.0.1:2379"};
        size_t n = 2;
        for (size_t j = 0; cases[i].args[j]; j++)
            args[n++] = cases[i].args[j];
        args[n] = NULL;
        expect_refused(cases[i].conf, args, cases[i].want);
    }
    /* A missing config file names itself. */
    struct tidb_config c;
    char err[600];
    const char *missing[] = {"--config", "/nonexistent/tidb.toml", NULL};
    assert_int_equal(load(&c, missing, err, sizeof err), -1);
    assert_contains(err, "/nonexistent/tidb.toml");
    tidb_config_free(&c);
    /* The good cases of the same checks. */
    const char *good[] = {"--path", "127.0.0.1:2379", "-P", "65535", "--status", "1", "--host",
                          "::1", "--status-host", "localhost", "--log-level", "warning", NULL};
    assert_int_equal(load(&c, good, err, sizeof err), 0);
    assert_int_equal(c.port, 65535);
    assert_int_equal(c.status_port, 1);
    assert_string_equal(c.host, "::1");
    assert_int_equal(c.level, LOG_WARN);
    tidb_config_free(&c);
    /* --help prints and returns 1 (main exits 0). */
    const char *help[] = {"--help", NULL};
    assert_int_equal(load(&c, help, err, sizeof err), 1);
    tidb_config_free(&c);
}

static int group_setup(void **state)
{
    (void)state;
    return tu_pki_dir(g_dir, sizeof g_dir, "tidb-config", NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    tu_rm_rf(g_dir);
    return 0;
}

int main(void)
{
    log_open("test", NULL, LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_teardown(test_flags_win_over_the_file, remove_conf),
        cmocka_unit_test_teardown(test_guide_snippets_load_verbatim, remove_conf),
        cmocka_unit_test_teardown(test_cluster_set_is_all_or_nothing, remove_conf),
        cmocka_unit_test_teardown(test_client_tls_rules, remove_conf),
        cmocka_unit_test_teardown(test_tls_files_must_be_readable, remove_conf),
        cmocka_unit_test_teardown(test_store_is_tikv, remove_conf),
        cmocka_unit_test_teardown(test_pd_endpoints_follow_cluster_tls, remove_conf),
        cmocka_unit_test_teardown(test_ports_hosts_and_flags, remove_conf),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
