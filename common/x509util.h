/* x509util.h — certificate and TLS settings of the transport (tls.c) and the certificate tool.
 * Includes mbedTLS; only common/ uses it.
 *
 * Contract:
 * - x509_subject_cn: the subject CN of crt as a NUL-terminated string ("" when there is none;
 *   bytes that are not printable ASCII become '?', so the result is safe to log). Returns the
 *   CN's full length, like snprintf: >= len means it was cut, and a cut CN must never be
 *   compared with an allow-list (its prefix could match an entry).
 * - x509_dn_oneline: a distinguished name in OpenSSL's one-line form, as MySQL shows and
 *   compares it for REQUIRE SUBJECT / ISSUER: "/C=US/O=PingCAP/CN=TiDB-Client" (attribute short
 *   names, in certificate order; non-printable bytes as '?'). Returns the full length; when it
 *   is >= len, attributes that did not fit were left out (never compare such a result).
 * - x509_subject_cn_count: how many CN attributes the subject holds (a cert with more than
 *   one is refused by servers: which one counts is ambiguous).
 * - x509_host_matches: true when host (a DNS name or an IPv4/IPv6 literal) is covered by a
 *   subjectAltName of crt: dNSName (case-insensitive, a leading "*." matches one label) or
 *   iPAddress (byte-exact; mbedTLS 2.28 does not check IP SANs itself). The CN is never
 *   used, not even when the cert has no SANs (as Go's crypto/tls since 1.15).
 * - tls_conf_defaults: TLS 1.2 only, the explicit AEAD ECDHE suites and curves we support
 *   (x25519 first, then secp256r1 for P-256 certificates), RNG wiring. One place so server and client agree.
 * - tls_alert_reason: a sentence for a received TLS alert code, from the point of view of the
 *   side that received it ("the server refused our certificate's Common Name", ...).
 * - tls_verify_reason: a sentence for mbedTLS X.509 verify flags ("certificate has expired",
 *   "certificate is not signed by the trusted CA", ...).
 * - tls_strerror: mbedtls_strerror wrapper returning buf.
 */
#ifndef TISIM_X509UTIL_H
#define TISIM_X509UTIL_H

#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <stdbool.h>
#include <stddef.h>

size_t x509_subject_cn(const mbedtls_x509_crt *crt, char *buf, size_t len);
size_t x509_dn_oneline(const mbedtls_x509_name *dn, char *buf, size_t len);
int x509_subject_cn_count(const mbedtls_x509_crt *crt);
bool x509_host_matches(const mbedtls_x509_crt *crt, const char *host);
void tls_conf_defaults(mbedtls_ssl_config *conf, int (*f_rng)(void *, unsigned char *, size_t),
                       void *p_rng);
const char *tls_alert_reason(int alert, bool we_are_client);
void tls_verify_reason(uint32_t flags, char *buf, size_t len);
const char *tls_strerror(int ret, char *buf, size_t len);

#endif
