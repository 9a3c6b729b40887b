/* Unit tests for url: every form the flags accept, and every form they refuse with its reason.
 * Each refusal is shown next to the closest accepted form. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "url.h"

static void expect_url(const char *text, bool scheme_required, const char *scheme,
                       const char *host, int port, const char *path)
{
    struct url u;
    char err[512] = "";
    if (url_parse(text, scheme_required, &u, err, sizeof err) != 0) {
        print_error("url_parse(\"%s\") refused: %s\n", text, err);
        fail();
    }
    assert_string_equal(u.scheme, scheme);
    assert_string_equal(u.host, host);
    assert_int_equal(u.port, port);
    assert_string_equal(u.path, path);
}

static void expect_refused(const char *text, bool scheme_required, const char *why)
{
    struct url u;
    char err[1024] = "";
    if (url_parse(text, scheme_required, &u, err, sizeof err) == 0) {
        print_error("url_parse(\"%s\") accepted it (host '%s', port %d)\n", text, u.host,
                    u.port);
        fail();
    }
    char want[1100];
    snprintf(want, sizeof want, "bad URL '%s': %s", text, why);
    assert_string_equal(err, want);
}

static void test_schemes(void **state)
{
    (void)state;
    expect_url("http://127.0.0.1:2379", true, "http", "127.0.0.1", 2379, "");
    expect_url("https://127.0.0.1:2379", true, "https", "127.0.0.1", 2379, "");
    /* scheme names are case-insensitive (RFC 3986) and kept lower-case */
    expect_url("HTTPS://pd1:2379", true, "https", "pd1", 2379, "");
    expect_url("Http://pd1:2379", true, "http", "pd1", 2379, "");
    expect_refused("ftp://127.0.0.1:2379", true, "scheme must be http or https");
    expect_refused("httpx://127.0.0.1:2379", true, "scheme must be http or https");
    expect_refused("://127.0.0.1:2379", true, "scheme must be http or https");
    expect_refused("ftp://127.0.0.1:2379", false, "scheme must be http or https");
}

static void test_scheme_required_or_not(void **state)
{
    (void)state;
    expect_url("127.0.0.1:20160", false, "", "127.0.0.1", 20160, "");
    expect_url("tikv1:20160", false, "", "tikv1", 20160, "");
    expect_refused("127.0.0.1:20160", true, "expected http://host:port or https://host:port");
    /* without a scheme there is no default port */
    expect_refused("127.0.0.1", false, "missing port");
}

static void test_default_ports(void **state)
{
    (void)state;
    expect_url("http://pd1", true, "http", "pd1", 80, "");
    expect_url("https://pd1", true, "https", "pd1", 443, "");
    expect_url("https://pd1/pd/api/v1", true, "https", "pd1", 443, "/pd/api/v1");
}

static void test_ports(void **state)
{
    (void)state;
    const char *bad_port = "port must be a number from 1 to 65535";
    expect_url("http://h:1", true, "http", "h", 1, "");
    expect_url("http://h:65535", true, "http", "h", 65535, "");
    expect_refused("http://h:0", true, bad_port);
    expect_refused("http://h:65536", true, bad_port);
    expect_refused("http://h:99999", true, bad_port);
    expect_refused("http://h:123456", true, bad_port);
    /* 2^32 + 80: must not wrap around to port 80 */
    expect_refused("http://h:4294967376", true, bad_port);
    expect_refused("http://h:", true, bad_port);
    expect_refused("http://h:-1", true, bad_port);
    expect_refused("http://h:+80", true, bad_port);
    expect_refused("http://h:80x", true, bad_port);
    expect_refused("http://h: 80", true, bad_port);
    expect_refused("h:0", false, bad_port);
}

static void test_ipv6(void **state)
{
    (void)state;
    expect_url("http://[::1]:2380", true, "http", "::1", 2380, "");
    expect_url("https://[::1]", true, "https", "::1", 443, "");
    expect_url("[::1]:20160", false, "", "::1", 20160, "");
    expect_url("http://[2001:db8::7]:1/x", true, "http", "2001:db8::7", 1, "/x");
    expect_url("http://[::ffff:127.0.0.1]:80", true, "http", "::ffff:127.0.0.1", 80, "");
    expect_refused("http://[::1:2380", true, "missing ']' after IPv6 address");
    expect_refused("http://[]:2380", true, "missing host");
    expect_refused("http://[pd1]:2380", true, "'pd1' is not an IPv6 address");
    expect_refused("http://[::1]x:2380", true, "unexpected text after host");
    expect_refused("http://[::1]:0", true, "port must be a number from 1 to 65535");
    /* an IPv6 address needs its brackets */
    expect_refused("http://::1:2380", true, "missing host");
}

static void test_missing_or_bad_host(void **state)
{
    (void)state;
    expect_url("http://a:1", true, "http", "a", 1, "");
    expect_refused("http://", true, "missing host");
    expect_refused("http://:2379", true, "missing host");
    expect_refused("http:///pd", true, "missing host");
    expect_refused(":2379", false, "missing host");
    expect_refused("", false, "missing host");
    expect_refused("http://user@pd1:2379", true, "host 'user@pd1' has a character other than "
                                                 "letters, digits, '.', '-' and '_'");
    expect_refused("http://pd1?x=1", true, "host 'pd1?x=1' has a character other than "
                                           "letters, digits, '.', '-' and '_'");
    expect_refused("http://pd 1:2379", true, "host 'pd 1' has a character other than "
                                             "letters, digits, '.', '-' and '_'");
    /* the longest host fits (255 bytes, as DNS allows), one byte more does not */
    char big[300];
    memset(big, 'a', 255);
    strcpy(big + 255, ":1");
    struct url u;
    char err[1024];
    assert_int_equal(url_parse(big, false, &u, err, sizeof err), 0);
    assert_int_equal(strlen(u.host), 255);
    memset(big, 'a', 256);
    strcpy(big + 256, ":1");
    assert_int_equal(url_parse(big, false, &u, err, sizeof err), -1);
    assert_contains(err, "': host is longer than 255 bytes");
}

static void test_path(void **state)
{
    (void)state;
    expect_url("http://h:1/", true, "http", "h", 1, "/");
    expect_url("http://h:1/pd/api/v1/members", true, "http", "h", 1, "/pd/api/v1/members");
    expect_url("h:1/x", false, "", "h", 1, "/x");
    expect_refused("http://h:1x/", true, "port must be a number from 1 to 65535");
    char big[700] = "http://h:1/";
    memset(big + 11, 'p', 600);
    big[611] = '\0';
    expect_refused(big, true, "path is longer than 511 bytes");
}

static void test_host_port(void **state)
{
    (void)state;
    struct url u;
    char err[256], buf[URL_HOST_PORT_LEN];
    assert_int_equal(url_parse("https://[::1]:2379", true, &u, err, sizeof err), 0);
    url_host_port(&u, buf, sizeof buf);
    assert_string_equal(buf, "[::1]:2379");
    assert_true(url_is_https(&u));
    assert_int_equal(url_parse("http://127.0.0.1", true, &u, err, sizeof err), 0);
    url_host_port(&u, buf, sizeof buf);
    assert_string_equal(buf, "127.0.0.1:80");
    assert_false(url_is_https(&u));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schemes),
        cmocka_unit_test(test_scheme_required_or_not),
        cmocka_unit_test(test_default_ports),
        cmocka_unit_test(test_ports),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_missing_or_bad_host),
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_host_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
