/* test_certgen.c — certgen: files, modes, names, SANs, EKU, chains, validity, RSA, load. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "certgen.h"

struct fx {
    char dir[64];
    char pki[96];
};

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_rf(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/tisim-certgen-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->pki, sizeof(f->pki), "%s/sub/pki", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    rm_rf(f->dir);
    free(f);
    return 0;
}

static const char *path(const struct fx *f, const char *name)
{
    static char buf[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", f->pki, name);
    return buf[i];
}

static void parse_crt(mbedtls_x509_crt *crt, const char *p)
{
    mbedtls_x509_crt_init(crt);
    int ret = mbedtls_x509_crt_parse_file(crt, p);
    if (ret != 0)
        fail_msg("%s: parse failed: -0x%04x", p, (unsigned)-ret);
}

static void assert_cn(const mbedtls_x509_crt *crt, const char *cn)
{
    for (const mbedtls_x509_name *n = &crt->subject; n != NULL; n = n->next) {
        if (n->oid.p && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) {
            assert_int_equal(n->val.len, strlen(cn));
            assert_memory_equal(n->val.p, cn, strlen(cn));
            return;
        }
    }
    fail_msg("no CN in certificate, want %s", cn);
}

/* Is there a SAN entry with this tag and these bytes? */
static bool has_san(const mbedtls_x509_crt *crt, unsigned char tag, const void *val, size_t len)
{
    for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s != NULL; s = s->next)
        if (s->buf.p != NULL && s->buf.tag == tag && s->buf.len == len &&
            memcmp(s->buf.p, val, len) == 0)
            return true;
    return false;
}

#define TAG_DNS (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2)
#define TAG_IP (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7)

static uint32_t verify(mbedtls_x509_crt *leaf, mbedtls_x509_crt *ca)
{
    uint32_t flags = 0;
    int ret = mbedtls_x509_crt_verify(leaf, ca, NULL, NULL, &flags, NULL, NULL);
    if (ret == 0)
        assert_int_equal(flags, 0);
    else
        assert_int_not_equal(flags, 0);
    return flags;
}

static mode_t file_mode(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return st.st_mode & 07777;
}

static void make_ca(const struct fx *f, const char *cn, enum certgen_key_type kt,
                    const char *cert, const char *key)
{
    char err[256] = "";
    struct certgen_req req = {.cn = cn, .is_ca = true, .key_type = kt};
    struct certgen_pair *ca = NULL;
    (void)f;
    if (certgen_make(&req, NULL, &ca, err, sizeof(err)) != 0)
        fail_msg("make CA: %s", err);
    if (certgen_write(ca, cert, key, err, sizeof(err)) != 0)
        fail_msg("write CA: %s", err);
    certgen_free(ca);
}

static void test_pki(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    char *extra[] = {"tisim.example", "10.1.2.3", "LOCALHOST"};
    struct certgen_pki_opts o = {.extra_sans = extra, .n_extra_sans = 3, .client_cn = "Ops"};
    if (certgen_pki(f->pki, &o, err, sizeof(err)) != 0)
        fail_msg("certgen_pki: %s", err);
    assert_int_equal(file_mode(f->pki) & 0777, 0700);

    static const char *const bases[] = {"ca", "pd-server", "tikv-server", "tidb-server", "client"};
    static const char *const cns[] = {"tisim CA", "PD-Server", "TiKV-Server", "TiDB-Server", "Ops"};
    for (size_t i = 0; i < 5; i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s.pem", bases[i]);
        assert_int_equal(file_mode(path(f, name)), 0644);
        snprintf(name, sizeof(name), "%s-key.pem", bases[i]);
        assert_int_equal(file_mode(path(f, name)), 0600);
    }
    /* no temp files left behind */
    DIR *d = opendir(f->pki);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    assert_int_equal(n, 10);

    make_ca(f, "tisim CA", CERTGEN_EC_P256, path(f, "../other-ca.pem"), path(f, "../other-ca-key.pem"));
    mbedtls_x509_crt ca, other;
    parse_crt(&ca, path(f, "ca.pem"));
    parse_crt(&other, path(f, "../other-ca.pem"));
    assert_cn(&ca, "tisim CA");
    assert_int_equal(ca.ca_istrue, 1);
    assert_int_equal(ca.version, 3);
    assert_int_equal(verify(&ca, &ca), 0);

    static const unsigned char lo4[4] = {127, 0, 0, 1};
    static const unsigned char lo6[16] = {[15] = 1};
    static const unsigned char ten[4] = {10, 1, 2, 3};
    for (size_t i = 1; i < 5; i++) {
        char name[64], kname[64];
        snprintf(name, sizeof(name), "%s.pem", bases[i]);
        snprintf(kname, sizeof(kname), "%s-key.pem", bases[i]);
        mbedtls_x509_crt crt;
        parse_crt(&crt, path(f, name));
        assert_cn(&crt, cns[i]);
        assert_int_equal(crt.version, 3);
        assert_int_equal(crt.ca_istrue, 0);
        assert_int_equal(crt.serial.len, 16);
        assert_true(crt.serial.p[0] < 0x80);
        assert_int_equal(mbedtls_pk_get_type(&crt.pk), MBEDTLS_PK_ECKEY);
        assert_int_equal(crt.sig_md, MBEDTLS_MD_SHA256);
        assert_true(crt.ext_types & MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE);
        assert_int_equal(mbedtls_x509_crt_check_extended_key_usage(
                             &crt, MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)), 0);
        assert_int_equal(mbedtls_x509_crt_check_extended_key_usage(
                             &crt, MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)), 0);
        if (i < 4) {
            assert_true(has_san(&crt, TAG_IP, lo4, 4));
            assert_true(has_san(&crt, TAG_IP, lo6, 16));
            assert_true(has_san(&crt, TAG_IP, ten, 4));
            assert_true(has_san(&crt, TAG_DNS, "localhost", 9));
            assert_true(has_san(&crt, TAG_DNS, "tisim.example", 13));
            assert_false(has_san(&crt, TAG_DNS, "LOCALHOST", 9)); /* de-duplicated */
        } else {
            assert_false(crt.ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME);
        }
        assert_int_equal(verify(&crt, &ca), 0);
        assert_true(verify(&crt, &other) & MBEDTLS_X509_BADCERT_NOT_TRUSTED);

        mbedtls_pk_context key;
        mbedtls_pk_init(&key);
        assert_int_equal(mbedtls_pk_parse_keyfile(&key, path(f, kname), NULL), 0);
        assert_int_equal(mbedtls_pk_check_pair(&crt.pk, &key), 0);
        mbedtls_pk_free(&key);
        mbedtls_x509_crt_free(&crt);
    }
    /* serials differ */
    mbedtls_x509_crt a, b;
    parse_crt(&a, path(f, "pd-server.pem"));
    parse_crt(&b, path(f, "tikv-server.pem"));
    assert_memory_not_equal(a.serial.p, b.serial.p, 16);
    mbedtls_x509_crt_free(&a);
    mbedtls_x509_crt_free(&b);
    mbedtls_x509_crt_free(&ca);
    mbedtls_x509_crt_free(&other);

    /* running again replaces everything in place */
    if (certgen_pki(f->pki, NULL, err, sizeof(err)) != 0)
        fail_msg("certgen_pki again: %s", err);
    mbedtls_x509_crt c;
    parse_crt(&c, path(f, "client.pem"));
    assert_cn(&c, "Control-Client");
    mbedtls_x509_crt_free(&c);
}

static void make_leaf(const struct certgen_pair *ca, const char *cn, time_t nb, time_t na,
                      const char *cert, const char *key)
{
    char err[256] = "";
    char *sans[] = {"127.0.0.1"};
    struct certgen_req req = {.cn = cn, .sans = sans, .n_sans = 1, .not_before = nb,
                              .not_after = na};
    struct certgen_pair *p = NULL;
    if (certgen_make(&req, ca, &p, err, sizeof(err)) != 0)
        fail_msg("make %s: %s", cn, err);
    if (certgen_write(p, cert, key, err, sizeof(err)) != 0)
        fail_msg("write %s: %s", cn, err);
    certgen_free(p);
}

static void test_validity(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    char cap[256], cakp[256], p1[256], k1[256];
    snprintf(cap, sizeof(cap), "%s/ca.pem", f->dir);
    snprintf(cakp, sizeof(cakp), "%s/ca-key.pem", f->dir);
    snprintf(p1, sizeof(p1), "%s/leaf.pem", f->dir);
    snprintf(k1, sizeof(k1), "%s/leaf-key.pem", f->dir);
    make_ca(f, "tisim CA", CERTGEN_EC_P256, cap, cakp);
    struct certgen_pair *ca = NULL;
    if (certgen_load(cap, cakp, &ca, err, sizeof(err)) != 0)
        fail_msg("load: %s", err);
    mbedtls_x509_crt cacrt, leaf;
    parse_crt(&cacrt, cap);
    time_t now = time(NULL);

    make_leaf(ca, "Old", now - 2 * 86400, now - 86400, p1, k1);
    parse_crt(&leaf, p1);
    uint32_t fl = verify(&leaf, &cacrt);
    assert_true(fl & MBEDTLS_X509_BADCERT_EXPIRED);
    assert_false(fl & MBEDTLS_X509_BADCERT_NOT_TRUSTED);
    mbedtls_x509_crt_free(&leaf);

    make_leaf(ca, "Young", now + 86400, now + 2 * 86400, p1, k1);
    parse_crt(&leaf, p1);
    fl = verify(&leaf, &cacrt);
    assert_true(fl & MBEDTLS_X509_BADCERT_FUTURE);
    assert_false(fl & MBEDTLS_X509_BADCERT_EXPIRED);
    mbedtls_x509_crt_free(&leaf);

    /* default validity: now - 1 hour .. + 365 days */
    make_leaf(ca, "Fine", 0, 0, p1, k1);
    parse_crt(&leaf, p1);
    assert_int_equal(verify(&leaf, &cacrt), 0);
    struct tm tm;
    time_t exp = now - 3600 + 365 * 86400;
    gmtime_r(&exp, &tm);
    assert_int_equal(leaf.valid_to.year, tm.tm_year + 1900);
    assert_int_equal(leaf.valid_to.mon, tm.tm_mon + 1);
    assert_int_equal(leaf.valid_to.day, tm.tm_mday);
    mbedtls_x509_crt_free(&leaf);

    /* a key file that existed world-readable is replaced by a 0600 one */
    assert_int_equal(chmod(k1, 0644), 0);
    make_leaf(ca, "Again", 0, 0, p1, k1);
    assert_int_equal(file_mode(k1), 0600);

    /* not_after before not_before */
    struct certgen_req bad = {.cn = "X", .not_before = now, .not_after = now - 10};
    struct certgen_pair *p = NULL;
    assert_int_equal(certgen_make(&bad, ca, &p, err, sizeof(err)), -1);
    assert_null(p);
    assert_non_null(strstr(err, "not-after"));

    certgen_free(ca);
    mbedtls_x509_crt_free(&cacrt);
}

static void test_rsa(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    char cap[256], cakp[256], p1[256], k1[256];
    snprintf(cap, sizeof(cap), "%s/rca.pem", f->dir);
    snprintf(cakp, sizeof(cakp), "%s/rca-key.pem", f->dir);
    snprintf(p1, sizeof(p1), "%s/rleaf.pem", f->dir);
    snprintf(k1, sizeof(k1), "%s/rleaf-key.pem", f->dir);
    make_ca(f, "RSA CA", CERTGEN_RSA_2048, cap, cakp);
    struct certgen_pair *ca = NULL;
    if (certgen_load(cap, cakp, &ca, err, sizeof(err)) != 0)
        fail_msg("load: %s", err);
    char *sans[] = {"::1", "db.example"};
    struct certgen_req req = {.cn = "RSA-Leaf", .sans = sans, .n_sans = 2,
                              .key_type = CERTGEN_RSA_2048};
    struct certgen_pair *p = NULL;
    if (certgen_make(&req, ca, &p, err, sizeof(err)) != 0 ||
        certgen_write(p, p1, k1, err, sizeof(err)) != 0)
        fail_msg("rsa leaf: %s", err);
    certgen_free(p);

    mbedtls_x509_crt cacrt, leaf;
    parse_crt(&cacrt, cap);
    parse_crt(&leaf, p1);
    assert_int_equal(mbedtls_pk_get_type(&cacrt.pk), MBEDTLS_PK_RSA);
    assert_int_equal(mbedtls_pk_get_type(&leaf.pk), MBEDTLS_PK_RSA);
    assert_int_equal(mbedtls_pk_get_bitlen(&leaf.pk), 2048);
    assert_int_equal(verify(&leaf, &cacrt), 0);
    assert_cn(&leaf, "RSA-Leaf");
    static const unsigned char lo6[16] = {[15] = 1};
    assert_true(has_san(&leaf, TAG_IP, lo6, 16));
    assert_true(has_san(&leaf, TAG_DNS, "db.example", 10));
    mbedtls_pk_context key;
    mbedtls_pk_init(&key);
    assert_int_equal(mbedtls_pk_parse_keyfile(&key, k1, NULL), 0);
    assert_int_equal(mbedtls_pk_get_type(&key), MBEDTLS_PK_RSA);
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&leaf);
    mbedtls_x509_crt_free(&cacrt);
    certgen_free(ca);
}

static void test_load(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    char *extra[] = {"node1"};
    struct certgen_pki_opts o = {.extra_sans = extra, .n_extra_sans = 1, .days = 30};
    if (certgen_pki(f->pki, &o, err, sizeof(err)) != 0)
        fail_msg("certgen_pki: %s", err);

    /* round trip: load the CA, sign a new leaf with it, verify against ca.pem */
    struct certgen_pair *ca = NULL;
    if (certgen_load(path(f, "ca.pem"), path(f, "ca-key.pem"), &ca, err, sizeof(err)) != 0)
        fail_msg("load: %s", err);
    make_leaf(ca, "Extra", 0, 0, path(f, "extra.pem"), path(f, "extra-key.pem"));
    mbedtls_x509_crt cacrt, leaf;
    parse_crt(&cacrt, path(f, "ca.pem"));
    parse_crt(&leaf, path(f, "extra.pem"));
    assert_int_equal(verify(&leaf, &cacrt), 0);
    mbedtls_x509_crt_free(&leaf);
    mbedtls_x509_crt_free(&cacrt);

    /* write what we loaded and load it again */
    if (certgen_write(ca, path(f, "ca2.pem"), path(f, "ca2-key.pem"), err, sizeof(err)) != 0)
        fail_msg("write: %s", err);
    certgen_free(ca);
    ca = NULL;
    assert_int_equal(certgen_load(path(f, "ca2.pem"), path(f, "ca2-key.pem"), &ca, err,
                                  sizeof(err)), 0);
    certgen_free(ca);

    /* mismatched pair */
    ca = NULL;
    assert_int_equal(certgen_load(path(f, "ca.pem"), path(f, "client-key.pem"), &ca, err,
                                  sizeof(err)), -1);
    assert_null(ca);
    assert_non_null(strstr(err, "client-key.pem"));
    assert_non_null(strstr(err, "does not match"));

    /* missing file, garbage file */
    assert_int_equal(certgen_load(path(f, "nope.pem"), path(f, "ca-key.pem"), &ca, err,
                                  sizeof(err)), -1);
    assert_non_null(strstr(err, "nope.pem"));
    assert_int_equal(certgen_load(path(f, "ca.pem"), path(f, "ca.pem"), &ca, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "ca.pem"));
    assert_null(strchr(err, '\n'));
}

static void test_bad_input(void **state)
{
    struct fx *f = *state;
    char err[256];
    struct certgen_pair *p = NULL;
    char *bad_san[] = {"bad host!"};
    char *empty_san[] = {""};
    char *zone_san[] = {"fe80::1%eth0"};
    struct certgen_req reqs[] = {
        {.cn = NULL},
        {.cn = ""},
        {.cn = "bad\nname"},
        {.cn = "X", .sans = bad_san, .n_sans = 1},
        {.cn = "X", .sans = empty_san, .n_sans = 1},
        {.cn = "X", .sans = zone_san, .n_sans = 1},
        {.cn = "X", .days = -1},
        {.cn = "CA", .is_ca = true, .sans = bad_san, .n_sans = 1},
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        err[0] = '\0';
        assert_int_equal(certgen_make(&reqs[i], NULL, &p, err, sizeof(err)), -1);
        assert_null(p);
        assert_true(err[0] != '\0');
        assert_null(strchr(err, '\n'));
    }
    /* a CN with a comma is kept verbatim (no DN string parsing) */
    struct certgen_req ok = {.cn = "Ops, Inc = team"};
    assert_int_equal(certgen_make(&ok, NULL, &p, err, sizeof(err)), 0);
    char cp[256], kp[256];
    snprintf(cp, sizeof(cp), "%s/comma.pem", f->dir);
    snprintf(kp, sizeof(kp), "%s/comma-key.pem", f->dir);
    assert_int_equal(certgen_write(p, cp, kp, err, sizeof(err)), 0);
    certgen_free(p);
    mbedtls_x509_crt crt;
    parse_crt(&crt, cp);
    assert_cn(&crt, "Ops, Inc = team");
    mbedtls_x509_crt_free(&crt);

    /* pki into a path under a regular file fails with the path named */
    char fp[256], sub[300];
    snprintf(fp, sizeof(fp), "%s/file", f->dir);
    FILE *fh = fopen(fp, "w");
    assert_non_null(fh);
    fclose(fh);
    snprintf(sub, sizeof(sub), "%s/x", fp);
    assert_int_equal(certgen_pki(sub, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, fp));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pki, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rsa, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
