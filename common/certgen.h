/* certgen.h — makes X.509 certificates and keys with mbedTLS x509write (no openssl needed).
 * Used by the tisim-certs tool and by tests that need certificates made in-process.
 *
 * Contract:
 * - certgen_make() creates a key (ECDSA P-256 by default, RSA-2048 on request) and a
 *   certificate for req, signed by issuer (or self-signed when issuer is NULL). Leaf certs get
 *   subjectAltName entries from req->sans: an IPv4/IPv6 literal becomes an iPAddress SAN,
 *   anything else a dNSName; extendedKeyUsage serverAuth+clientAuth (our role certs both serve
 *   and dial); basicConstraints CA:false. CA certs get CA:true and keyCertSign|cRLSign.
 *   Serial numbers are random. Validity: [not_before, not_after]; 0 means "now - 1 hour" and
 *   "not_before + days" (days 0 → 365), so expired and not-yet-valid certs can be made on purpose.
 * - certgen_write() writes PEM files: the cert 0644, the key 0600 (created with that mode,
 *   never world-readable even briefly; an existing file is replaced atomically via rename).
 * - certgen_load() reads a cert+key pair back (e.g. a CA to sign more certs).
 * - certgen_pki() makes the whole cluster set in dir (created 0700 if missing):
 *     ca.pem ca-key.pem                      CN "tisim CA"
 *     pd-server.pem pd-server-key.pem        CN "PD-Server"
 *     tikv-server.pem tikv-server-key.pem    CN "TiKV-Server"
 *     tidb-server.pem tidb-server-key.pem    CN "TiDB-Server"
 *     client.pem client-key.pem              CN opts->client_cn (default "Control-Client"),
 *                                            the one client cert the ctl tools share
 *   Server certs carry SANs 127.0.0.1, ::1, localhost plus opts->extra_sans.
 * - All functions return 0, or -1 with one line in err naming the file or step that failed.
 */
#ifndef TISIM_CERTGEN_H
#define TISIM_CERTGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum certgen_key_type { CERTGEN_EC_P256, CERTGEN_RSA_2048 };

struct certgen_req {
    const char *cn;
    char *const *sans;
    size_t n_sans;
    bool is_ca;
    enum certgen_key_type key_type;
    time_t not_before; /* 0: now - 1 hour */
    time_t not_after;  /* 0: not_before + days */
    int days;          /* 0: 365 */
};

struct certgen_pair; /* a certificate and its private key, in memory */

int certgen_make(const struct certgen_req *req, const struct certgen_pair *issuer,
                 struct certgen_pair **out, char *err, size_t errlen);
int certgen_write(const struct certgen_pair *pair, const char *cert_path, const char *key_path,
                  char *err, size_t errlen);
int certgen_load(const char *cert_path, const char *key_path, struct certgen_pair **out,
                 char *err, size_t errlen);
void certgen_free(struct certgen_pair *pair);

struct certgen_pki_opts {
    enum certgen_key_type key_type;
    const char *client_cn;   /* NULL: "Control-Client" */
    char *const *extra_sans; /* added to every server cert */
    size_t n_extra_sans;
    int days;                /* 0: 365 */
};
int certgen_pki(const char *dir, const struct certgen_pki_opts *opts, char *err, size_t errlen);

#endif
