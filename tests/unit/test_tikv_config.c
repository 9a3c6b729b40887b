/* test_tikv_config.c — tikv-server's configuration: defaults, flags win over the file, TiDB's
 * TLS guide's [security] snippet loads verbatim, [security] is all or nothing (a partial set
 * names the missing key), PD endpoints follow TLS, addresses are host:port, --data-dir and
 * --pd are required. */
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
#include "tikv_config.h"

static char conf_path[64];

static void write_conf(const char *text)
{
    snprintf(conf_path, sizeof conf_path, "/tmp/test_tikv_config.XXXXXX");
    int fd = mkstemp(conf_path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
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
static int load(struct tikv_config *c, const char *const *args, char *err, size_t errlen)
{
    char *argv[32] = {"tikv-server"};
    int argc = 1;
    for (; args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    int rc = tikv_config_load(c, argc, argv, err, errlen);
    return rc == 0 ? tikv_config_validate(c, err, errlen) : rc;
}

/* TiDB's guide "Enable TLS Authentication and Encrypt the Stored Data", TiKV, verbatim. */
static const char guide_snippet[] =
    "[security]\n"
    "## The path for TLS certificates. Empty string means that secure connections are disabled.\n"
    "# Path of file that contains list of trusted SSL CAs. If set, following four settings "
    "shouldn't be empty\n"
    "ca-path = \"/path/to/ca.pem\"\n"
    "# Path of file that contains X509 certificate in PEM format.\n"
    "cert-path = \"/path/to/tikv-server-cert.pem\"\n"
    "# Path of file that contains X509 key in PEM format.\n"
    "key-path = \"/path/to/tikv-server-key.pem\"\n"
    "# Check the client certificate's CN. Empty means no check.\n"
    "cert-allowed-cn = [\"TiDB-Server\", \"PD-Server\", \"TiKV-Control\", \"RawKvClient1\"]\n"
    "# The path of the encryption key file\n"
    "cipher-file = \"/path/to/cipher-file-256\"\n";

static void test_defaults(void **state)
{
    (void)state;
    struct tikv_config c;
    char err[512] = "";
    const char *args[] = {"--pd", "127.0.0.1:2379", "--data-dir", "/tmp/kv", NULL};
    assert_int_equal(load(&c, args, err, sizeof err), 0);
    assert_string_equal(c.addr, "127.0.0.1:20160");
    assert_int_equal(c.addr_url.port, 20160);
    assert_string_equal(c.addr_url.host, "127.0.0.1");
    assert_string_equal(c.status_addr, "127.0.0.1:20180");
    assert_int_equal(c.status_url.port, 20180);
    assert_false(c.tls);
    assert_null(c.security.cipher_file);
    assert_int_equal(c.level, LOG_INFO);
    assert_null(c.log_file);
    /* Without TLS a scheme-less endpoint means http. */
    assert_int_equal(c.n_pd, 1);
    assert_string_equal(c.pd_urls[0].scheme, "http");
    assert_int_equal(c.pd_urls[0].port, 2379);
    tikv_config_free(&c);
}

static void test_flags_win_over_the_file(void **state)
{
    (void)state;
    write_conf("log-level = \"warn\"\n"
               "[pd]\nendpoints = [\"127.0.0.1:1111\"]\n"
               "[server]\naddr = \"127.0.0.1:3333\"\nstatus-addr = \"127.0.0.1:4444\"\n"
               "[storage]\ndata-dir = \"/tmp/fromfile\"\n");
    struct tikv_config c;
    char err[512] = "";
    const char *args[] = {"--config", conf_path, "--pd", "127.0.0.1:2222,127.0.0.1:2223",
                          "--addr=127.0.0.1:5555", "-s", "/tmp/flag", NULL};
    assert_int_equal(load(&c, args, err, sizeof err), 0);
    assert_int_equal(c.n_pd, 2);
    assert_int_equal(c.pd_urls[0].port, 2222);
    assert_int_equal(c.pd_urls[1].port, 2223);
    assert_int_equal(c.addr_url.port, 5555);
    assert_string_equal(c.data_dir, "/tmp/flag");
    /* What no flag sets comes from the file. */
    assert_int_equal(c.status_url.port, 4444);
    assert_int_equal(c.level, LOG_WARN);
    tikv_config_free(&c);

    /* Without flags the file's values stand. */
    const char *file_only[] = {"--config", conf_path, NULL};
    assert_int_equal(load(&c, file_only, err, sizeof err), 0);
    assert_int_equal(c.n_pd, 1);
    assert_int_equal(c.pd_urls[0].port, 1111);
    assert_int_equal(c.addr_url.port, 3333);
    assert_string_equal(c.data_dir, "/tmp/fromfile");
    tikv_config_free(&c);
}

static void test_guide_snippet_loads_verbatim(void **state)
{
    (void)state;
    write_conf(guide_snippet);
    struct tikv_config c;
    char err[512] = "";
    const char *args[] = {"--config", conf_path, "--pd", "https://127.0.0.1:2379",
                          "--data-dir", "/tmp/kv", NULL};
    assert_int_equal(load(&c, args, err, sizeof err), 0);
    assert_true(c.tls);
    assert_string_equal(c.security.ca_path, "/path/to/ca.pem");
    assert_string_equal(c.security.cert_path, "/path/to/tikv-server-cert.pem");
    assert_string_equal(c.security.key_path, "/path/to/tikv-server-key.pem");
    assert_string_equal(c.security.cipher_file, "/path/to/cipher-file-256");
    const char *cns[] = {"TiDB-Server", "PD-Server", "TiKV-Control", "RawKvClient1"};
    assert_int_equal(c.security.cert_allowed_cn.n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(c.security.cert_allowed_cn.items[i], cns[i]);
    assert_false(cfg_list_contains(&c.security.cert_allowed_cn, "TiKV-Server"));
    tikv_config_free(&c);

    /* The multi-line form of the list loads the same. */
    remove_conf(NULL);
    write_conf("[security]\nca-path = \"/a\"\ncert-path = \"/b\"\nkey-path = \"/c\"\n"
               "cert-allowed-cn = [\n    \"TiDB-Server\",\n    \"PD-Server\",\n]\n");
    args[1] = conf_path;
    assert_int_equal(load(&c, args, err, sizeof err), 0);
    assert_int_equal(c.security.cert_allowed_cn.n, 2);
    assert_string_equal(c.security.cert_allowed_cn.items[1], "PD-Server");
    assert_null(c.security.cipher_file);
    tikv_config_free(&c);
}

static void test_partial_security_names_the_missing_key(void **state)
{
    (void)state;
    static const struct {
        const char *conf, *missing;
    } cases[] = {
        {"[security]\nca-path = \"/x/ca.pem\"\ncert-path = \"/x/kv.pem\"\n", "key-path"},
        {"[security]\ncert-path = \"/x/kv.pem\"\nkey-path = \"/x/k.pem\"\n", "ca-path"},
        {"[security]\nca-path = \"/x/ca.pem\"\nkey-path = \"/x/k.pem\"\n", "cert-path"},
    };
    const char *args[] = {"--config", conf_path, "--pd", "https://127.0.0.1:2379",
                          "--data-dir", "/tmp/kv", NULL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tikv_config c;
        char err[512] = "", want[64];
        write_conf(cases[i].conf);
        args[1] = conf_path;
        assert_int_equal(load(&c, args, err, sizeof err), -1);
        snprintf(want, sizeof want, "[security] %s is not set", cases[i].missing);
        assert_contains(err, want);
        assert_null(strchr(err, '\n'));
        tikv_config_free(&c);
        remove_conf(NULL);
    }
    /* All three set: TLS is on. */
    struct tikv_config c;
    char err[512] = "";
    write_conf("[security]\nca-path = \"/x/ca.pem\"\ncert-path = \"/x/kv.pem\"\n"
               "key-path = \"/x/k.pem\"\n");
    args[1] = conf_path;
    assert_int_equal(load(&c, args, err, sizeof err), 0);
    assert_true(c.tls);
    tikv_config_free(&c);
}

static void test_pd_endpoints_follow_tls(void **state)
{
    (void)state;
    struct tikv_config c;
    char err[512] = "";
    write_conf("[security]\nca-path = \"/x/ca.pem\"\ncert-path = \"/x/kv.pem\"\n"
               "key-path = \"/x/k.pem\"\n");
    const char *http_with_tls[] = {"--config", conf_path, "--data-dir", "/tmp/kv", "--pd",
                                   "https://127.0.0.1:2379,http://127.0.0.1:2381", NULL};
    assert_int_equal(load(&c, http_with_tls, err, sizeof err), -1);
    assert_contains(err, "--pd http://127.0.0.1:2381: TLS is on");
    tikv_config_free(&c);

    /* With TLS on, host:port means https. */
    const char *bare_with_tls[] = {"--config", conf_path, "--data-dir", "/tmp/kv", "--pd",
                                   "https://127.0.0.1:2379, 127.0.0.1:2381", NULL};
    assert_int_equal(load(&c, bare_with_tls, err, sizeof err), 0);
    assert_int_equal(c.n_pd, 2);
    assert_string_equal(c.pd_urls[0].scheme, "https");
    assert_string_equal(c.pd_urls[1].scheme, "https");
    assert_int_equal(c.pd_urls[1].port, 2381);
    tikv_config_free(&c);

    const char *https_without_tls[] = {"--data-dir", "/tmp/kv", "--pd",
                                       "https://127.0.0.1:2379", NULL};
    assert_int_equal(load(&c, https_without_tls, err, sizeof err), -1);
    assert_contains(err, "--pd https://127.0.0.1:2379: https needs TLS");
    tikv_config_free(&c);

    const char *http_without_tls[] = {"--data-dir", "/tmp/kv", "--pd", "http://127.0.0.1:2379",
                                      NULL};
    assert_int_equal(load(&c, http_without_tls, err, sizeof err), 0);
    assert_string_equal(c.pd_urls[0].scheme, "http");
    tikv_config_free(&c);

    const char *bad[] = {"--data-dir", "/tmp/kv", "--pd", "127.0.0.1:99999", NULL};
    assert_int_equal(load(&c, bad, err, sizeof err), -1);
    assert_contains(err, "--pd: bad URL '127.0.0.1:99999'");
    tikv_config_free(&c);
}

static void test_addresses_are_host_port(void **state)
{
    (void)state;
    static const struct {
        const char *flag, *value, *want;
    } cases[] = {
        {"--addr", "127.0.0.1:0", "--addr: bad URL '127.0.0.1:0'"},
        {"--addr", "127.0.0.1:65536", "--addr: bad URL '127.0.0.1:65536'"},
        {"--addr", "127.0.0.1", "--addr: bad URL '127.0.0.1'"},
        {"--addr", "https://127.0.0.1:20160", "without a scheme"},
        {"--status-addr", "127.0.0.1:x", "--status-addr: bad URL"},
        {"--status-addr", "", "--status-addr is empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tikv_config c;
        char err[512] = "";
        const char *args[] = {"--pd", "127.0.0.1:2379", "--data-dir", "/tmp/kv", cases[i].flag,
                              cases[i].value, NULL};
        assert_int_equal(load(&c, args, err, sizeof err), -1);
        assert_contains(err, cases[i].want);
        tikv_config_free(&c);
    }
    struct tikv_config c;
    char err[512] = "";
    const char *good[] = {"--pd", "127.0.0.1:2379", "--data-dir", "/tmp/kv", "--addr",
                          "0.0.0.0:65535", "--status-addr", "[::1]:1", NULL};
    assert_int_equal(load(&c, good, err, sizeof err), 0);
    assert_int_equal(c.addr_url.port, 65535);
    assert_int_equal(c.status_url.port, 1);
    assert_string_equal(c.status_url.host, "::1");
    tikv_config_free(&c);
}

static void test_required_and_bad_flags(void **state)
{
    (void)state;
    static const struct {
        const char *args[8];
        const char *want;
    } cases[] = {
        {{"--pd", "127.0.0.1:2379", NULL}, "--data-dir is not set"},
        {{"--data-dir", "/tmp/kv", NULL}, "--pd is not set"},
        {{"--data-dir", "/tmp/kv", "--pd", " , ", NULL}, "--pd is not set"},
        {{"--pd", "127.0.0.1:2379", "--data-dir", "/tmp/kv", "-L", "loud", NULL},
         "--log-level 'loud'"},
        {{"--bogus", NULL}, "unknown flag --bogus"},
        {{"--config", "/nonexistent/tikv.toml", NULL}, "/nonexistent/tikv.toml"},
        {{"--pd", "127.0.0.1:2379", "extra", NULL}, "unexpected argument 'extra'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tikv_config c;
        char err[512] = "";
        assert_int_equal(load(&c, cases[i].args, err, sizeof err), -1);
        assert_contains(err, cases[i].want);
        tikv_config_free(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_teardown(test_flags_win_over_the_file, remove_conf),
        cmocka_unit_test_teardown(test_guide_snippet_loads_verbatim, remove_conf),
        cmocka_unit_test_teardown(test_partial_security_names_the_missing_key, remove_conf),
        cmocka_unit_test_teardown(test_pd_endpoints_follow_tls, remove_conf),
        cmocka_unit_test(test_addresses_are_host_port),
        cmocka_unit_test(test_required_and_bad_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
