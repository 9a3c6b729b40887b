#include "x509util.h"

#include <arpa/inet.h>
#include <mbedtls/asn1.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

size_t x509_subject_cn(const mbedtls_x509_crt *crt, char *buf, size_t len)
{
    buf[0] = '\0';
    for (const mbedtls_x509_name *n = crt ? &crt->subject : NULL; n; n = n->next) {
        if (n->oid.p == NULL || MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) != 0)
            continue;
        size_t o = 0;
        for (size_t i = 0; i < n->val.len && o + 1 < len; i++) {
            unsigned char c = n->val.p[i];
            buf[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        }
        buf[o] = '\0';
        return n->val.len;
    }
    return 0;
}

size_t x509_dn_oneline(const mbedtls_x509_name *dn, char *buf, size_t len)
{
    size_t o = 0, need = 0;
    buf[0] = '\0';
    for (const mbedtls_x509_name *n = dn; n; n = n->next) {
        const char *key = NULL;
        if (n->oid.p == NULL || mbedtls_oid_get_attr_short_name(&n->oid, &key) != 0)
            key = "?";
        size_t klen = strlen(key);
        need += 2 + klen + n->val.len;
        if (o + 2 + klen + n->val.len >= len)
            continue; /* keep counting: the caller learns it was cut */
        buf[o++] = '/';
        memcpy(buf + o, key, klen);
        o += klen;
        buf[o++] = '=';
        for (size_t i = 0; i < n->val.len; i++) {
            unsigned char c = n->val.p[i];
            buf[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        }
        buf[o] = '\0';
    }
    return need;
}

int x509_subject_cn_count(const mbedtls_x509_crt *crt)
{
    int n = 0;
    for (const mbedtls_x509_name *a = crt ? &crt->subject : NULL; a; a = a->next)
        if (a->oid.p && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &a->oid) == 0)
            n++;
    return n;
}

/* "*.example.com" covers exactly one label: "a.example.com", not "example.com" or "a.b.example.com". */
static bool dns_name_matches(const unsigned char *pattern, size_t plen, const char *host)
{
    size_t hlen = strlen(host);
    if (plen == hlen && strncasecmp((const char *)pattern, host, hlen) == 0)
        return true;
    if (plen < 3 || pattern[0] != '*' || pattern[1] != '.')
        return false;
    const char *dot = strchr(host, '.');
    if (!dot || dot == host)
        return false;
    size_t rest = strlen(dot + 1);
    return rest == plen - 2 && strncasecmp((const char *)pattern + 2, dot + 1, rest) == 0;
}

bool x509_host_matches(const mbedtls_x509_crt *crt, const char *host)
{
    unsigned char ip[16];
    size_t iplen = 0;
    if (inet_pton(AF_INET, host, ip) == 1)
        iplen = 4;
    else if (inet_pton(AF_INET6, host, ip) == 1)
        iplen = 16;

    for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s && s->buf.p; s = s->next) {
        int tag = s->buf.tag;
        if (iplen && tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7)) {
            if (s->buf.len == iplen && memcmp(s->buf.p, ip, iplen) == 0)
                return true;
        } else if (!iplen && tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2)) {
            if (dns_name_matches(s->buf.p, s->buf.len, host))
                return true;
        }
    }
    return false;
}

static const int tls_suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

/* x25519 is the cheapest key exchange; secp256r1 must stay for P-256 certificate signatures. */
static const mbedtls_ecp_group_id tls_curves[] = {
    MBEDTLS_ECP_DP_CURVE25519,
    MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_SECP384R1,
    MBEDTLS_ECP_DP_NONE,
};

void tls_conf_defaults(mbedtls_ssl_config *conf, int (*f_rng)(void *, unsigned char *, size_t),
                       void *p_rng)
{
    mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(conf, tls_suites);
    mbedtls_ssl_conf_curves(conf, tls_curves);
    mbedtls_ssl_conf_rng(conf, f_rng, p_rng);
}

const char *tls_alert_reason(int alert, bool we_are_client)
{
    switch (alert) {
    case MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED:
        return we_are_client
                   ? "the server refused our certificate: its Common Name is not in the server's "
                     "allow-list (TLS alert access_denied)"
                   : "the client refused our certificate (TLS alert access_denied)";
    case MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA:
        return we_are_client ? "the server does not trust the CA that signed our certificate "
                               "(TLS alert unknown_ca)"
                             : "the client does not trust the CA that signed our certificate "
                               "(TLS alert unknown_ca)";
    case MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED:
        return "the peer says our certificate has expired or is not yet valid "
               "(TLS alert certificate_expired)";
    case MBEDTLS_SSL_ALERT_MSG_BAD_CERT:
        return "the peer rejected our certificate (TLS alert bad_certificate)";
    case MBEDTLS_SSL_ALERT_MSG_NO_CERT:
    case MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE:
        return we_are_client ? "the server rejected the handshake: it requires a client "
                               "certificate signed by its CA (TLS alert handshake_failure)"
                             : "the client rejected the handshake (TLS alert handshake_failure)";
    case MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION:
        return "the peer does not speak TLS 1.2 (TLS alert protocol_version)";
    case MBEDTLS_SSL_ALERT_MSG_INSUFFICIENT_SECURITY:
        return "no cipher suite in common (TLS alert insufficient_security)";
    case MBEDTLS_SSL_ALERT_MSG_DECRYPT_ERROR:
        return "the peer could not verify our signature (TLS alert decrypt_error)";
    case MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT:
        return "the peer cannot use our certificate type (TLS alert unsupported_certificate)";
    case MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN:
        return "the peer rejected our certificate (TLS alert certificate_unknown)";
    case MBEDTLS_SSL_ALERT_MSG_INTERNAL_ERROR:
        return "the peer failed internally, e.g. it cannot load its own certificate or key "
               "(TLS alert internal_error)";
    default:
        return "the peer aborted the handshake with a TLS alert";
    }
}

void tls_verify_reason(uint32_t flags, char *buf, size_t len)
{
    static const struct { uint32_t flag; const char *text; } reasons[] = {
        {MBEDTLS_X509_BADCERT_OTHER, "Common Name is not in the allow-list"},
        {MBEDTLS_X509_BADCERT_NOT_TRUSTED, "certificate is not signed by the trusted CA"},
        {MBEDTLS_X509_BADCERT_EXPIRED, "certificate has expired"},
        {MBEDTLS_X509_BADCERT_FUTURE, "certificate is not yet valid"},
        {MBEDTLS_X509_BADCERT_CN_MISMATCH, "certificate does not match the host name"},
        {MBEDTLS_X509_BADCERT_REVOKED, "certificate has been revoked"},
        {MBEDTLS_X509_BADCERT_KEY_USAGE, "certificate key usage (keyUsage) does not allow this use"},
        {MBEDTLS_X509_BADCERT_EXT_KEY_USAGE, "certificate extended key usage (extendedKeyUsage) does not allow this use"},
        {MBEDTLS_X509_BADCERT_BAD_MD, "certificate is signed with an unacceptable hash"},
        {MBEDTLS_X509_BADCERT_BAD_PK, "certificate uses an unacceptable key type"},
        {MBEDTLS_X509_BADCERT_BAD_KEY, "certificate key is too weak"},
        {MBEDTLS_X509_BADCERT_MISSING, "no certificate was presented"},
    };
    buf[0] = '\0';
    size_t o = 0;
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0] && o + 1 < len; i++) {
        if (flags & reasons[i].flag)
            o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? "; " : "", reasons[i].text);
    }
    if (o == 0)
        snprintf(buf, len, "certificate verification failed (flags 0x%x)", (unsigned)flags);
}

const char *tls_strerror(int ret, char *buf, size_t len)
{
    mbedtls_strerror(ret, buf, len);
    return buf;
}
