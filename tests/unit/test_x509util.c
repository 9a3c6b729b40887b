/* test_x509util.c — subject CN, host/IP SAN matching, and the reasons users read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "certgen.h"
#include "x509util.h"

/* Makes a self-signed cert with cn and sans and parses it back. */
static void make_crt(mbedtls_x509_crt *crt, const char *cn, char *const *sans, size_t n_sans)
{
    char dir[] = "/tmp/tisim-x509-XXXXXX", cert[64], key[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(cert, sizeof cert, "%s/c.pem", dir);
    snprintf(key, sizeof key, "%s/k.pem", dir);
    struct certgen_req req = {.cn = cn, .sans = sans, .n_sans = n_sans};
    struct certgen_pair *pair = NULL;
    assert_int_equal(certgen_make(&req, NULL, &pair, err, sizeof err), 0);
    assert_int_equal(certgen_write(pair, cert, key, err, sizeof err), 0);
    certgen_free(pair);
    mbedtls_x509_crt_init(crt);
    assert_int_equal(mbedtls_x509_crt_parse_file(crt, cert), 0);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

static void test_subject_cn(void **state)
{
    (void)state;
    mbedtls_x509_crt crt;
    make_crt(&crt, "TiKV-Server", NULL, 0);
    char cn[64];
    assert_int_equal(x509_subject_cn(&crt, cn, sizeof cn), 11);
    assert_string_equal(cn, "TiKV-Server");
    /* cut to the buffer, and the length says so */
    assert_int_equal(x509_subject_cn(&crt, cn, 5), 11);
    assert_string_equal(cn, "TiKV");
    mbedtls_x509_crt_free(&crt);
}

static void test_host_matches_ip_and_dns(void **state)
{
    (void)state;
    char *sans[] = {"127.0.0.1", "::1", "localhost", "*.tisim.test"};
    mbedtls_x509_crt crt;
    make_crt(&crt, "PD-Server", sans, 4);
    assert_true(x509_host_matches(&crt, "127.0.0.1"));
    assert_true(x509_host_matches(&crt, "::1"));
    assert_true(x509_host_matches(&crt, "0:0:0:0:0:0:0:1"));
    assert_true(x509_host_matches(&crt, "localhost"));
    assert_true(x509_host_matches(&crt, "LOCALHOST"));
    assert_true(x509_host_matches(&crt, "pd1.tisim.test"));
    assert_false(x509_host_matches(&crt, "127.0.0.2"));
    assert_false(x509_host_matches(&crt, "::2"));
    assert_false(x509_host_matches(&crt, "tisim.test"));
    assert_false(x509_host_matches(&crt, "a.pd1.tisim.test"));
    assert_false(x509_host_matches(&crt, "localhost.evil"));
    /* The CN is not a name the cert covers when it has SANs. */
    assert_false(x509_host_matches(&crt, "PD-Server"));
    mbedtls_x509_crt_free(&crt);
}

static void test_ip_literal_never_matches_dns_san(void **state)
{
    (void)state;
    char *sans[] = {"localhost"};
    mbedtls_x509_crt crt;
    make_crt(&crt, "PD-Server", sans, 1);
    assert_true(x509_host_matches(&crt, "localhost"));
    assert_false(x509_host_matches(&crt, "127.0.0.1"));
    mbedtls_x509_crt_free(&crt);
}

static void test_reasons_name_the_cause(void **state)
{
    (void)state;
    char buf[256];
    tls_verify_reason(MBEDTLS_X509_BADCERT_EXPIRED, buf, sizeof buf);
    assert_non_null(strstr(buf, "expired"));
    tls_verify_reason(MBEDTLS_X509_BADCERT_NOT_TRUSTED | MBEDTLS_X509_BADCERT_CN_MISMATCH, buf,
                      sizeof buf);
    assert_non_null(strstr(buf, "trusted CA"));
    assert_non_null(strstr(buf, "host name"));
    assert_non_null(strstr(tls_alert_reason(MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED, true),
                           "Common Name"));
    assert_non_null(strstr(tls_alert_reason(MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA, true), "CA"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subject_cn),
        cmocka_unit_test(test_host_matches_ip_and_dns),
        cmocka_unit_test(test_ip_literal_never_matches_dns_san),
        cmocka_unit_test(test_reasons_name_the_cause),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
