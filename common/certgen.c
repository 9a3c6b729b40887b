/* certgen.c — X.509 certificates and keys with mbedTLS 2.28 x509write. See certgen.h. */
#include "certgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/rsa.h>
#include <mbedtls/x509_crt.h>

struct certgen_pair {
    mbedtls_x509_crt crt;   /* first entry is the certificate */
    mbedtls_pk_context key; /* its private key */
};

#define CERT_DER_MAX 8192
#define KEY_PEM_MAX 16000
#define CN_MAX 64
#define SAN_MAX 253

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (char *p = err; *p; p++) /* promise: one line */
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

static const char *mberr(int ret, char *buf, size_t len)
{
    mbedtls_strerror(ret, buf, len);
    return buf;
}

static struct certgen_pair *pair_new(void)
{
    struct certgen_pair *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    mbedtls_x509_crt_init(&p->crt);
    mbedtls_pk_init(&p->key);
    return p;
}

void certgen_free(struct certgen_pair *pair)
{
    if (pair == NULL)
        return;
    mbedtls_x509_crt_free(&pair->crt);
    mbedtls_pk_free(&pair->key);
    free(pair);
}

/* ---- input checks ---------------------------------------------------------------------- */

static bool cn_valid(const char *cn)
{
    size_t n = strlen(cn);
    if (n == 0 || n > CN_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)cn[i] < 0x20 || (unsigned char)cn[i] > 0x7e)
            return false;
    return true;
}

/* A dNSName: letters, digits, '-', '_', '.', and a leading "*." wildcard label. */
static bool dns_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SAN_MAX)
        return false;
    const char *p = s;
    if (p[0] == '*' && p[1] == '.')
        p += 2;
    if (*p == '\0' || *p == '.')
        return false;
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok || (c == '.' && p[1] == '.'))
            return false;
    }
    return true;
}

/* Returns address length (4 or 16) for an IP literal, else 0. */
static size_t ip_parse(const char *s, unsigned char out[16])
{
    if (inet_pton(AF_INET, s, out) == 1)
        return 4;
    if (inet_pton(AF_INET6, s, out) == 1)
        return 16;
    return 0;
}

/* ---- extension DER --------------------------------------------------------------------- */

/* Prefixes the len bytes just written before *p with their length and tag (DER is written
 * backwards). Returns the bytes added, or a negative mbedTLS error. */
static int wrap_tlv(unsigned char **p, unsigned char *start, size_t len, unsigned char tag)
{
    int ret;
    size_t n = 0;
    MBEDTLS_ASN1_CHK_ADD(n, mbedtls_asn1_write_len(p, start, len));
    MBEDTLS_ASN1_CHK_ADD(n, mbedtls_asn1_write_tag(p, start, tag));
    return (int)n;
}

#define DER_SEQUENCE (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)

/* GeneralNames ::= SEQUENCE OF GeneralName; dNSName [2] IA5String, iPAddress [7] OCTET STRING */
static int write_san_der(unsigned char *buf, size_t size, char *const *sans, size_t n,
                         size_t *out_len)
{
    unsigned char *p = buf + size;
    size_t len = 0;
    int ret;
    for (size_t i = n; i-- > 0;) {
        unsigned char ip[16];
        size_t iplen = ip_parse(sans[i], ip);
        const unsigned char *val = iplen ? ip : (const unsigned char *)sans[i];
        size_t vlen = iplen ? iplen : strlen(sans[i]);
        unsigned char tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | (iplen ? 7 : 2);
        size_t l = 0;
        MBEDTLS_ASN1_CHK_ADD(l, mbedtls_asn1_write_raw_buffer(&p, buf, val, vlen));
        MBEDTLS_ASN1_CHK_ADD(l, wrap_tlv(&p, buf, l, tag));
        len += l;
    }
    MBEDTLS_ASN1_CHK_ADD(len, wrap_tlv(&p, buf, len, DER_SEQUENCE));
    *out_len = len;
    return 0;
}

static int write_san(unsigned char *buf, size_t size, char *const *sans, size_t n, size_t *out_len,
                     char *err, size_t errlen)
{
    if (write_san_der(buf, size, sans, n, out_len) == 0)
        return 0;
    seterr(err, errlen, "subjectAltName: too many or too long names");
    return -1;
}

/* ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId: serverAuth, clientAuth */
static int write_eku(unsigned char *buf, size_t size, size_t *out_len)
{
    unsigned char *p = buf + size;
    size_t len = 0;
    int ret;
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_CLIENT_AUTH,
                                                     MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)));
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_SERVER_AUTH,
                                                     MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)));
    MBEDTLS_ASN1_CHK_ADD(len, wrap_tlv(&p, buf, len, DER_SEQUENCE));
    *out_len = len;
    return 0;
}

/* Finds the subjectKeyIdentifier of a parsed certificate (mbedTLS 2.28 does not keep it).
 * Returns a pointer into crt->v3_ext, or NULL. */
static const unsigned char *find_ski(const mbedtls_x509_crt *crt, size_t *ski_len)
{
    if (crt->v3_ext.p == NULL || crt->v3_ext.len == 0)
        return NULL;
    unsigned char *p = crt->v3_ext.p;
    const unsigned char *end = p + crt->v3_ext.len;
    size_t len;
    /* v3_ext is [3] { SEQUENCE OF Extension }: the raw pointer starts at the [3] tag. */
    if (mbedtls_asn1_get_tag(&p, end, &len,
                             MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 3) == 0)
        end = p + len;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return NULL;
    end = p + len;
    while (p < end) {
        if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
            return NULL;
        const unsigned char *ext_end = p + len;
        size_t oid_len;
        if (mbedtls_asn1_get_tag(&p, ext_end, &oid_len, MBEDTLS_ASN1_OID) != 0)
            return NULL;
        bool is_ski = oid_len == MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_KEY_IDENTIFIER) &&
                      memcmp(p, MBEDTLS_OID_SUBJECT_KEY_IDENTIFIER, oid_len) == 0;
        p += oid_len;
        if (is_ski) {
            int crit;
            (void)mbedtls_asn1_get_bool(&p, ext_end, &crit); /* optional */
            size_t olen, klen;
            if (mbedtls_asn1_get_tag(&p, ext_end, &olen, MBEDTLS_ASN1_OCTET_STRING) != 0)
                return NULL;
            if (mbedtls_asn1_get_tag(&p, p + olen, &klen, MBEDTLS_ASN1_OCTET_STRING) != 0 ||
                klen == 0)
                return NULL;
            *ski_len = klen;
            return p;
        }
        p = (unsigned char *)ext_end;
    }
    return NULL;
}

/* AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING } */
static int write_aki(unsigned char *buf, size_t size, const unsigned char *kid, size_t kid_len,
                     size_t *out_len)
{
    unsigned char *p = buf + size;
    size_t len = 0;
    int ret;
    MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_raw_buffer(&p, buf, kid, kid_len));
    MBEDTLS_ASN1_CHK_ADD(len, wrap_tlv(&p, buf, len, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 0));
    MBEDTLS_ASN1_CHK_ADD(len, wrap_tlv(&p, buf, len, DER_SEQUENCE));
    *out_len = len;
    return 0;
}

/* Copies a parsed Name into an x509write name list, keeping order and string tags.
 * (x509write writes the list tail-first, so prepend in DER order.) */
static int copy_name(mbedtls_asn1_named_data **head, const mbedtls_x509_name *name)
{
    for (const mbedtls_x509_name *n = name; n != NULL; n = n->next) {
        if (n->oid.p == NULL)
            continue;
        mbedtls_asn1_named_data *d = mbedtls_calloc(1, sizeof(*d));
        if (d == NULL)
            return -1;
        d->oid.tag = n->oid.tag;
        d->oid.len = n->oid.len;
        d->oid.p = mbedtls_calloc(1, n->oid.len ? n->oid.len : 1);
        d->val.tag = n->val.tag;
        d->val.len = n->val.len;
        d->val.p = mbedtls_calloc(1, n->val.len ? n->val.len : 1);
        d->next = *head;
        *head = d; /* linked first so x509write_crt_free releases it on any failure */
        if (d->oid.p == NULL || d->val.p == NULL)
            return -1;
        memcpy(d->oid.p, n->oid.p, n->oid.len);
        memcpy(d->val.p, n->val.p, n->val.len);
    }
    return 0;
}

static int set_cn(mbedtls_asn1_named_data **head, const char *cn)
{
    mbedtls_asn1_named_data *d =
        mbedtls_asn1_store_named_data(head, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN),
                                      (const unsigned char *)cn, strlen(cn));
    if (d == NULL)
        return -1;
    d->val.tag = MBEDTLS_ASN1_UTF8_STRING;
    return 0;
}

static int fmt_time(time_t t, char out[15])
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 1950 || tm.tm_year + 1900 > 9999)
        return -1;
    int n = snprintf(out, 15, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return n == 14 ? 0 : -1;
}

/* ---- certgen_make ---------------------------------------------------------------------- */

int certgen_make(const struct certgen_req *req, const struct certgen_pair *issuer,
                 struct certgen_pair **out, char *err, size_t errlen)
{
    char eb[160];
    int ret;
    if (out != NULL)
        *out = NULL;
    if (req == NULL || out == NULL) {
        seterr(err, errlen, "certgen_make: missing request");
        return -1;
    }
    if (req->cn == NULL || !cn_valid(req->cn)) {
        seterr(err, errlen, "certificate CN must be 1-%d printable ASCII characters", CN_MAX);
        return -1;
    }
    if (req->key_type != CERTGEN_EC_P256 && req->key_type != CERTGEN_RSA_2048) {
        seterr(err, errlen, "certificate \"%s\": unknown key type", req->cn);
        return -1;
    }
    if (req->n_sans > 0 && req->sans == NULL) {
        seterr(err, errlen, "certificate \"%s\": SAN list missing", req->cn);
        return -1;
    }
    if (req->is_ca && req->n_sans > 0) {
        seterr(err, errlen, "certificate \"%s\": a CA certificate takes no subjectAltName",
               req->cn);
        return -1;
    }
    if (req->n_sans > 64) {
        seterr(err, errlen, "certificate \"%s\": too many SANs (max 64)", req->cn);
        return -1;
    }
    for (size_t i = 0; i < req->n_sans; i++) {
        unsigned char ip[16];
        const char *s = req->sans[i];
        if (s == NULL || (ip_parse(s, ip) == 0 && !dns_valid(s))) {
            seterr(err, errlen, "certificate \"%s\": invalid SAN \"%.80s\" (want an IP address "
                   "or a DNS name)", req->cn, s ? s : "");
            return -1;
        }
    }
    if (req->days < 0) {
        seterr(err, errlen, "certificate \"%s\": days must not be negative", req->cn);
        return -1;
    }
    if (issuer != NULL && !mbedtls_pk_can_do(&issuer->key, MBEDTLS_PK_ECDSA) &&
        !mbedtls_pk_can_do(&issuer->key, MBEDTLS_PK_RSA)) {
        seterr(err, errlen, "certificate \"%s\": issuer has no usable private key", req->cn);
        return -1;
    }

    /* validity */
    time_t nb = req->not_before ? req->not_before : time(NULL) - 3600;
    time_t na = req->not_after;
    if (na == 0) {
        long long days = req->days ? req->days : 365;
        if (days > 3660000LL) {
            seterr(err, errlen, "certificate \"%s\": validity too long", req->cn);
            return -1;
        }
        na = nb + (time_t)(days * 86400);
    }
    char nb_s[15], na_s[15];
    if (na <= nb) {
        seterr(err, errlen, "certificate \"%s\": not-after must be later than not-before", req->cn);
        return -1;
    }
    if (fmt_time(nb, nb_s) != 0 || fmt_time(na, na_s) != 0) {
        seterr(err, errlen, "certificate \"%s\": validity outside years 1950-9999", req->cn);
        return -1;
    }

    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509write_cert wr;
    mbedtls_mpi serial;
    unsigned char *der = NULL;
    struct certgen_pair *pair = NULL;
    int rc = -1;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_x509write_crt_init(&wr);
    mbedtls_mpi_init(&serial);

    static const char pers[] = "tisim-certgen";
    if ((ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                                     (const unsigned char *)pers, sizeof(pers) - 1)) != 0) {
        seterr(err, errlen, "seeding the random generator: %s", mberr(ret, eb, sizeof(eb)));
        goto done;
    }

    pair = pair_new();
    if (pair == NULL) {
        seterr(err, errlen, "certificate \"%s\": out of memory", req->cn);
        goto done;
    }

    /* key */
    if (req->key_type == CERTGEN_RSA_2048) {
        if ((ret = mbedtls_pk_setup(&pair->key, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA))) == 0)
            ret = mbedtls_rsa_gen_key(mbedtls_pk_rsa(pair->key), mbedtls_ctr_drbg_random, &drbg,
                                      2048, 65537);
    } else {
        if ((ret = mbedtls_pk_setup(&pair->key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY))) == 0)
            ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pair->key),
                                      mbedtls_ctr_drbg_random, &drbg);
    }
    if (ret != 0) {
        seterr(err, errlen, "certificate \"%s\": generating the %s key: %s", req->cn,
               req->key_type == CERTGEN_RSA_2048 ? "RSA-2048" : "P-256", mberr(ret, eb, sizeof(eb)));
        goto done;
    }

    /* serial: 16 random bytes, positive, fixed length */
    unsigned char sb[16];
    if ((ret = mbedtls_ctr_drbg_random(&drbg, sb, sizeof(sb))) != 0) {
        seterr(err, errlen, "certificate \"%s\": serial number: %s", req->cn,
               mberr(ret, eb, sizeof(eb)));
        goto done;
    }
    sb[0] = (unsigned char)((sb[0] & 0x7f) | 0x40);
    if ((ret = mbedtls_mpi_read_binary(&serial, sb, sizeof(sb))) != 0 ||
        (ret = mbedtls_x509write_crt_set_serial(&wr, &serial)) != 0) {
        seterr(err, errlen, "certificate \"%s\": serial number: %s", req->cn,
               mberr(ret, eb, sizeof(eb)));
        goto done;
    }

    mbedtls_x509write_crt_set_version(&wr, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&wr, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&wr, &pair->key);
    mbedtls_x509write_crt_set_issuer_key(&wr, issuer ? (mbedtls_pk_context *)&issuer->key
                                                     : &pair->key);
    if (set_cn(&wr.subject, req->cn) != 0 ||
        (issuer ? copy_name(&wr.issuer, &issuer->crt.subject) : set_cn(&wr.issuer, req->cn)) != 0) {
        seterr(err, errlen, "certificate \"%s\": out of memory for names", req->cn);
        goto done;
    }
    if ((ret = mbedtls_x509write_crt_set_validity(&wr, nb_s, na_s)) != 0) {
        seterr(err, errlen, "certificate \"%s\": validity: %s", req->cn, mberr(ret, eb, sizeof(eb)));
        goto done;
    }

    /* extensions */
    const char *step = "basicConstraints";
    if ((ret = mbedtls_x509write_crt_set_basic_constraints(&wr, req->is_ca ? 1 : 0,
                                                           req->is_ca ? -1 : 0)) != 0)
        goto ext_fail;
    step = "subjectKeyIdentifier";
    if ((ret = mbedtls_x509write_crt_set_subject_key_identifier(&wr)) != 0)
        goto ext_fail;
    step = "authorityKeyIdentifier";
    {
        size_t kid_len = 0;
        const unsigned char *kid = issuer ? find_ski(&issuer->crt, &kid_len) : NULL;
        if (kid != NULL && kid_len <= 64) {
            unsigned char akbuf[128];
            size_t len = 0;
            if ((ret = write_aki(akbuf, sizeof(akbuf), kid, kid_len, &len)) != 0 ||
                (ret = mbedtls_x509write_crt_set_extension(
                     &wr, MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER,
                     MBEDTLS_OID_SIZE(MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER), 0,
                     akbuf + sizeof(akbuf) - len, len)) != 0)
                goto ext_fail;
        } else if ((ret = mbedtls_x509write_crt_set_authority_key_identifier(&wr)) != 0) {
            goto ext_fail; /* computed from the issuer's public key, as OpenSSL does */
        }
    }
    step = "keyUsage";
    unsigned int ku;
    if (req->is_ca)
        ku = MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN |
             MBEDTLS_X509_KU_DIGITAL_SIGNATURE;
    else if (req->key_type == CERTGEN_RSA_2048)
        ku = MBEDTLS_X509_KU_DIGITAL_SIGNATURE | MBEDTLS_X509_KU_KEY_ENCIPHERMENT;
    else
        ku = MBEDTLS_X509_KU_DIGITAL_SIGNATURE;
    if ((ret = mbedtls_x509write_crt_set_key_usage(&wr, ku)) != 0)
        goto ext_fail;
    if (!req->is_ca) {
        step = "extendedKeyUsage";
        unsigned char ekbuf[64];
        size_t len = 0;
        if ((ret = write_eku(ekbuf, sizeof(ekbuf), &len)) != 0 ||
            (ret = mbedtls_x509write_crt_set_extension(
                 &wr, MBEDTLS_OID_EXTENDED_KEY_USAGE, MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                 0, ekbuf + sizeof(ekbuf) - len, len)) != 0)
            goto ext_fail;
        if (req->n_sans > 0) {
            step = "subjectAltName";
            unsigned char sanbuf[64 * (SAN_MAX + 4) + 8];
            if (write_san(sanbuf, sizeof(sanbuf), req->sans, req->n_sans, &len, err, errlen) != 0)
                goto done;
            if ((ret = mbedtls_x509write_crt_set_extension(
                     &wr, MBEDTLS_OID_SUBJECT_ALT_NAME, MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME),
                     0, sanbuf + sizeof(sanbuf) - len, len)) != 0)
                goto ext_fail;
        }
    }

    der = malloc(CERT_DER_MAX);
    if (der == NULL) {
        seterr(err, errlen, "certificate \"%s\": out of memory", req->cn);
        goto done;
    }
    ret = mbedtls_x509write_crt_der(&wr, der, CERT_DER_MAX, mbedtls_ctr_drbg_random, &drbg);
    if (ret < 0) {
        seterr(err, errlen, "certificate \"%s\": signing: %s", req->cn, mberr(ret, eb, sizeof(eb)));
        goto done;
    }
    if ((ret = mbedtls_x509_crt_parse_der(&pair->crt, der + CERT_DER_MAX - ret, (size_t)ret)) != 0) {
        seterr(err, errlen, "certificate \"%s\": re-reading the signed certificate: %s", req->cn,
               mberr(ret, eb, sizeof(eb)));
        goto done;
    }
    *out = pair;
    pair = NULL;
    rc = 0;
    goto done;

ext_fail:
    seterr(err, errlen, "certificate \"%s\": %s extension: %s", req->cn, step,
           mberr(ret, eb, sizeof(eb)));
done:
    free(der);
    certgen_free(pair);
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&wr);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    return rc;
}

/* ---- files ----------------------------------------------------------------------------- */

/* Writes data to path atomically: a temp file in the same directory created O_EXCL with mode,
 * fsynced, then renamed over path. */
static int write_file_atomic(const char *path, const unsigned char *data, size_t len, mode_t mode,
                             char *err, size_t errlen)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (tmp == NULL) {
        seterr(err, errlen, "%s: out of memory", path);
        return -1;
    }
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        snprintf(tmp, plen + 32, "%s.tmp.%ld.%d", path, (long)getpid(), attempt);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        seterr(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    /* The mode passed to open() is already restricted by umask; fix group/other bits
     * exactly (never widening a key beyond 0600). */
    if (fchmod(fd, mode) != 0) {
        seterr(err, errlen, "%s: chmod: %s", path, strerror(errno));
        goto fail;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            seterr(err, errlen, "%s: write: %s", path, strerror(errno));
            goto fail;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        seterr(err, errlen, "%s: fsync: %s", path, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        seterr(err, errlen, "%s: close: %s", path, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        seterr(err, errlen, "%s: rename: %s", path, strerror(errno));
        goto fail;
    }
    free(tmp);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    return -1;
}

int certgen_write(const struct certgen_pair *pair, const char *cert_path, const char *key_path,
                  char *err, size_t errlen)
{
    char eb[160];
    int ret;
    if (pair == NULL || cert_path == NULL || key_path == NULL || !*cert_path || !*key_path) {
        seterr(err, errlen, "certgen_write: missing certificate or path");
        return -1;
    }
    if (strcmp(cert_path, key_path) == 0) {
        seterr(err, errlen, "%s: certificate and key must be different files", cert_path);
        return -1;
    }
    unsigned char *buf = malloc(KEY_PEM_MAX);
    if (buf == NULL) {
        seterr(err, errlen, "%s: out of memory", key_path);
        return -1;
    }
    int rc = -1;
    /* key first: a cert without its key is useless, a new key next to an old cert is caught by
     * certgen_load's pair check */
    ret = mbedtls_pk_write_key_pem((mbedtls_pk_context *)&pair->key, buf, KEY_PEM_MAX);
    if (ret != 0) {
        seterr(err, errlen, "%s: encoding the key: %s", key_path, mberr(ret, eb, sizeof(eb)));
        goto done;
    }
    if (write_file_atomic(key_path, buf, strlen((char *)buf), 0600, err, errlen) != 0)
        goto done;
    mbedtls_platform_zeroize(buf, KEY_PEM_MAX);

    size_t olen = 0;
    ret = mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n",
                                   pair->crt.raw.p, pair->crt.raw.len, buf, KEY_PEM_MAX, &olen);
    if (ret != 0) {
        seterr(err, errlen, "%s: encoding the certificate: %s", cert_path,
               mberr(ret, eb, sizeof(eb)));
        goto done;
    }
    if (write_file_atomic(cert_path, buf, strlen((char *)buf), 0644, err, errlen) != 0)
        goto done;
    rc = 0;
done:
    mbedtls_platform_zeroize(buf, KEY_PEM_MAX);
    free(buf);
    return rc;
}

int certgen_load(const char *cert_path, const char *key_path, struct certgen_pair **out,
                 char *err, size_t errlen)
{
    char eb[160];
    int ret;
    if (out != NULL)
        *out = NULL;
    if (cert_path == NULL || key_path == NULL || out == NULL) {
        seterr(err, errlen, "certgen_load: missing path");
        return -1;
    }
    struct certgen_pair *pair = pair_new();
    if (pair == NULL) {
        seterr(err, errlen, "%s: out of memory", cert_path);
        return -1;
    }
    if ((ret = mbedtls_x509_crt_parse_file(&pair->crt, cert_path)) != 0) {
        if (ret == MBEDTLS_ERR_PK_FILE_IO_ERROR)
            seterr(err, errlen, "%s: cannot read: %s", cert_path, strerror(errno));
        else
            seterr(err, errlen, "%s: not a valid certificate: %s", cert_path,
                   mberr(ret, eb, sizeof(eb)));
        goto fail;
    }
    if ((ret = mbedtls_pk_parse_keyfile(&pair->key, key_path, NULL)) != 0) {
        if (ret == MBEDTLS_ERR_PK_FILE_IO_ERROR)
            seterr(err, errlen, "%s: cannot read: %s", key_path, strerror(errno));
        else if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED)
            seterr(err, errlen, "%s: key is encrypted (not supported)", key_path);
        else
            seterr(err, errlen, "%s: not a valid private key: %s", key_path,
                   mberr(ret, eb, sizeof(eb)));
        goto fail;
    }
    if ((ret = mbedtls_pk_check_pair(&pair->crt.pk, &pair->key)) != 0) {
        seterr(err, errlen, "%s: key does not match certificate %s", key_path, cert_path);
        goto fail;
    }
    *out = pair;
    return 0;
fail:
    certgen_free(pair);
    return -1;
}

/* ---- certgen_pki ----------------------------------------------------------------------- */

static int mkdir_p(const char *dir, char *err, size_t errlen)
{
    size_t n = strlen(dir);
    char *p = malloc(n + 1);
    if (p == NULL) {
        seterr(err, errlen, "%s: out of memory", dir);
        return -1;
    }
    memcpy(p, dir, n + 1);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    for (char *s = p + 1;; s++) {
        bool last = *s == '\0';
        if (*s == '/' || last) {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST) {
                seterr(err, errlen, "%s: cannot create directory: %s", p, strerror(errno));
                free(p);
                return -1;
            }
            *s = c;
        }
        if (last)
            break;
    }
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
        seterr(err, errlen, "%s: not a directory", p);
        free(p);
        return -1;
    }
    free(p);
    return 0;
}

static int make_and_write(const char *dir, const char *base, const struct certgen_req *req,
                          const struct certgen_pair *issuer, struct certgen_pair **keep,
                          char *err, size_t errlen)
{
    char cert_path[PATH_MAX], key_path[PATH_MAX];
    if ((size_t)snprintf(cert_path, sizeof(cert_path), "%s/%s.pem", dir, base) >= sizeof(cert_path) ||
        (size_t)snprintf(key_path, sizeof(key_path), "%s/%s-key.pem", dir, base) >= sizeof(key_path)) {
        seterr(err, errlen, "%s: path too long", dir);
        return -1;
    }
    struct certgen_pair *pair = NULL;
    if (certgen_make(req, issuer, &pair, err, errlen) != 0)
        return -1;
    int rc = certgen_write(pair, cert_path, key_path, err, errlen);
    if (rc == 0 && keep != NULL)
        *keep = pair;
    else
        certgen_free(pair);
    return rc;
}

static bool san_seen(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(list[i], s) == 0)
            return true;
    return false;
}

int certgen_pki(const char *dir, const struct certgen_pki_opts *opts, char *err, size_t errlen)
{
    static const struct certgen_pki_opts defaults = {0};
    if (opts == NULL)
        opts = &defaults;
    if (dir == NULL || *dir == '\0') {
        seterr(err, errlen, "certgen_pki: no output directory");
        return -1;
    }
    if (opts->n_extra_sans > 0 && opts->extra_sans == NULL) {
        seterr(err, errlen, "certgen_pki: extra SAN list missing");
        return -1;
    }
    if (opts->n_extra_sans > 60) {
        seterr(err, errlen, "too many extra SANs (max 60)");
        return -1;
    }
    if (mkdir_p(dir, err, errlen) != 0)
        return -1;

    char *sans[64];
    size_t n = 0;
    sans[n++] = "127.0.0.1";
    sans[n++] = "::1";
    sans[n++] = "localhost";
    for (size_t i = 0; i < opts->n_extra_sans; i++)
        if (opts->extra_sans[i] == NULL || !san_seen(sans, n, opts->extra_sans[i]))
            sans[n++] = opts->extra_sans[i]; /* NULL is reported by certgen_make */

    struct certgen_req req = {.key_type = opts->key_type, .days = opts->days};
    struct certgen_pair *ca = NULL;
    req.cn = "tisim CA";
    req.is_ca = true;
    if (make_and_write(dir, "ca", &req, NULL, &ca, err, errlen) != 0)
        return -1;

    static const struct {
        const char *base, *cn;
    } servers[] = {{"pd-server", "PD-Server"},
                   {"tikv-server", "TiKV-Server"},
                   {"tidb-server", "TiDB-Server"}};
    int rc = -1;
    req.is_ca = false;
    req.sans = sans;
    req.n_sans = n;
    for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++) {
        req.cn = servers[i].cn;
        if (make_and_write(dir, servers[i].base, &req, ca, NULL, err, errlen) != 0)
            goto done;
    }
    req.cn = opts->client_cn ? opts->client_cn : "Control-Client";
    req.sans = NULL;
    req.n_sans = 0;
    if (make_and_write(dir, "client", &req, ca, NULL, err, errlen) != 0)
        goto done;
    rc = 0;
done:
    certgen_free(ca);
    return rc;
}
