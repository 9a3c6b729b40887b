/* tlsdial.h — a blocking HTTPS client for the one-shot ctl tools (pd-ctl, tidb-ctl, ...).
 *
 * Contract:
 * - https_request() connects to the URL's host:port, does a TLS 1.2 handshake (server chain
 *   verified against ca_path, dialed host matched against the SANs incl. IP SANs, our cert+key
 *   presented when given), sends one HTTP/1.1 request with Connection: close, and reads the
 *   whole response (Content-Length or chunked or until close). Timeout per step: timeout_ms.
 * - "http://" URLs are spoken in plaintext (for clusters without TLS).
 * - On failure it returns -1 and writes ONE line into err that names the cause from the
 *   user's point of view, e.g.
 *     "cannot connect to 127.0.0.1:2379: Connection refused"
 *     "the server refused our certificate: its Common Name is not in the server's allow-list (TLS alert access_denied)"
 *     "the server's certificate is not trusted: not signed by the CA in /x/ca.pem"
 *     "the server's certificate does not match host 127.0.0.2"
 *     "the server requires a client certificate (TLS alert handshake_failure)"
 * - On success it returns 0 with *status the HTTP status and *body a NUL-terminated heap
 *   buffer (caller frees) of *body_len bytes.
 */
#ifndef TISIM_TLSDIAL_H
#define TISIM_TLSDIAL_H

#include <stddef.h>

struct tls_files {
    const char *ca_path;
    const char *cert_path; /* may be NULL: no client certificate */
    const char *key_path;
};

struct https_response {
    int status;
    char *body;
    size_t body_len;
};

int https_request(const char *url, const char *method, const char *path, const char *body,
                  const struct tls_files *files, int timeout_ms, struct https_response *resp,
                  char *err, size_t errlen);
void https_response_free(struct https_response *resp);

#endif
