/* test_pd_config.c — pd-server's configuration: flags win over the file, [security] is all or
 * nothing (a partial set names the missing key), URLs follow TLS (https with it, http
 * without), and --initial-cluster must list this member. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pd_config.h"
#include "testutil.h"

static char conf_path[64];

static void write_conf(const char *text)
{
    snprintf(conf_path, sizeof conf_path, "/tmp/test_pd_config.XXXXXX");
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
static int load(struct pd_config *c, const char *const *args, char *err, size_t errlen)
{
    char *argv[32] = {"pd-server"};
    int argc = 1;
    for (; args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    int rc = pd_config_load(c, argc, argv, err, errlen);
    return rc == 0 ? pd_config_validate(c, err, errlen) : rc;
}

#define SECURITY_ALL                                                                          \
    "[security]\ncacert-path = \"/x/ca.pem\"\ncert-path = \"/x/pd.pem\"\n"                    \
    "key-path = \"/x/pd-key.pem\"\ncert-allowed-cn = [\"PD-Control\"]\n"

static void test_flags_win_over_the_file(void **state)
{
    (void)state;
    write_conf("name = \"fromfile\"\nclient-urls = \"http://127.0.0.1:1111\"\n"
               "data-dir = \"/tmp/d\"\n[replication]\nmax-replicas = 5\n");
    struct pd_config c;
    char err[512] = "";
    const char *args[] = {"--config", conf_path, "--client-urls", "http://127.0.0.1:2222",
                          "--data-dir=/tmp/flag", NULL};
    assert_int_equal(load(&c, args, err, sizeof err), 0);
    assert_string_equal(c.client_urls, "http://127.0.0.1:2222");
    assert_int_equal(c.client_url.port, 2222);
    assert_string_equal(c.data_dir, "/tmp/flag");
    /* What no flag sets comes from the file, the rest from the defaults. */
    assert_string_equal(c.name, "fromfile");
    assert_int_equal(c.max_replicas, 5);
    assert_string_equal(c.peer_urls, "http://127.0.0.1:2380");
    assert_false(c.tls);
    assert_int_equal(c.n_members, 1);
    assert_string_equal(c.members[0].name, "fromfile");
    pd_config_free(&c);
}

static void test_partial_security_names_the_missing_key(void **state)
{
    (void)state;
    static const struct {
        const char *conf, *missing;
    } cases[] = {
        {"[security]\ncacert-path = \"/x/ca.pem\"\ncert-path = \"/x/pd.pem\"\n", "key-path"},
        {"[security]\ncert-path = \"/x/pd.pem\"\nkey-path = \"/x/k.pem\"\n", "cacert-path"},
        {"[security]\ncacert-path = \"/x/ca.pem\"\nkey-path = \"/x/k.pem\"\n", "cert-path"},
    };
    const char *args[] = {"--config", conf_path, NULL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct pd_config c;
        char err[512] = "", want[64];
        write_conf(cases[i].conf);
        args[1] = conf_path;
        assert_int_equal(load(&c, args, err, sizeof err), -1);
        snprintf(want, sizeof want, "[security] %s is not set", cases[i].missing);
        assert_contains(err, want);
        pd_config_free(&c);
        remove_conf(NULL);
    }
    /* All three set (and https URLs): TLS is on. */
    struct pd_config c;
    char err[512] = "";
    write_conf(SECURITY_ALL);
    const char *good[] = {"--config", conf_path, "--client-urls", "https://127.0.0.1:2379",
                          "--peer-urls", "https://127.0.0.1:2380", NULL};
    assert_int_equal(load(&c, good, err, sizeof err), 0);
    assert_true(c.tls);
    assert_int_equal(c.security.cert_allowed_cn.n, 1);
    assert_string_equal(c.security.cert_allowed_cn.items[0], "PD-Control");
    pd_config_free(&c);
}

static void test_urls_follow_tls(void **state)
{
    (void)state;
    struct pd_config c;
    char err[512] = "";
    write_conf(SECURITY_ALL);
    const char *http_client[] = {"--config", conf_path, "--client-urls", "http://127.0.0.1:2379",
                                 "--peer-urls", "https://127.0.0.1:2380", NULL};
    assert_int_equal(load(&c, http_client, err, sizeof err), -1);
    assert_contains(err, "--client-urls http://127.0.0.1:2379: TLS is on");
    assert_contains(err, "use an https:// URL");
    pd_config_free(&c);

    const char *http_peer[] = {"--config", conf_path, "--client-urls", "https://127.0.0.1:2379",
                               NULL}; /* the default peer URL is http:// */
    assert_int_equal(load(&c, http_peer, err, sizeof err), -1);
    assert_contains(err, "--peer-urls http://127.0.0.1:2380: TLS is on");
    pd_config_free(&c);

    const char *no_tls[] = {"--client-urls", "https://127.0.0.1:2379", NULL};
    assert_int_equal(load(&c, no_tls, err, sizeof err), -1);
    assert_contains(err, "https needs TLS");
    pd_config_free(&c);
}

static void test_initial_cluster_must_list_this_member(void **state)
{
    (void)state;
    struct pd_config c;
    char err[512] = "";
    const char *other[] = {"--name", "pd1", "--initial-cluster", "pd2=http://127.0.0.1:2380",
                           NULL};
    assert_int_equal(load(&c, other, err, sizeof err), -1);
    assert_contains(err, "does not list this member's --name 'pd1'");
    pd_config_free(&c);

    const char *twice[] = {"--name", "pd1", "--initial-cluster",
                           "pd1=http://127.0.0.1:2380,pd1=http://127.0.0.1:2382", NULL};
    assert_int_equal(load(&c, twice, err, sizeof err), -1);
    assert_contains(err, "member 'pd1' is listed twice");
    pd_config_free(&c);

    const char *good[] = {"--name", "pd2", "--initial-cluster",
                          "pd1=http://127.0.0.1:2380,pd2=http://127.0.0.1:2382", NULL};
    assert_int_equal(load(&c, good, err, sizeof err), 0);
    assert_int_equal(c.n_members, 2);
    assert_int_equal(c.self, 1);
    assert_int_equal(c.members[0].peer.port, 2380);
    pd_config_free(&c);
}

static void test_help_and_unknown_flags(void **state)
{
    (void)state;
    struct pd_config c;
    char err[512] = "";
    const char *bogus[] = {"--bogus", NULL};
    assert_int_equal(load(&c, bogus, err, sizeof err), -1);
    assert_contains(err, "unknown flag --bogus");
    pd_config_free(&c);
    const char *missing[] = {"--config", "/nonexistent/pd.toml", NULL};
    assert_int_equal(load(&c, missing, err, sizeof err), -1);
    assert_contains(err, "/nonexistent/pd.toml");
    pd_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_flags_win_over_the_file, remove_conf),
        cmocka_unit_test_teardown(test_partial_security_names_the_missing_key, remove_conf),
        cmocka_unit_test_teardown(test_urls_follow_tls, remove_conf),
        cmocka_unit_test_teardown(test_initial_cluster_must_list_this_member, remove_conf),
        cmocka_unit_test(test_help_and_unknown_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
