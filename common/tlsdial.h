/* tlsdial.h — a blocking HTTPS client for the one-shot ctl tools (pd-ctl, tidb-ctl, ...).
 *
 * Contract:
 * - https_request() connects to the URL's host:port, does a TLS 1.2 handshake (server chain
 *   verified against ca_path, dialed host matched against the SANs incl. IP SANs, our cert+key
 *   presented when given), sends one HTTP/1.1 request with Connection: close, and reads the
 *   whole response (Content-Length or chunked or until close). Timeout per step (connect, each
 *   read, each write): timeout_ms (<= 0: 10 s).
 * - "http://" URLs are spoken in plaintext (for clusters without TLS); files may be NULL then.
 *   URLs are parsed by url.h; one without a scheme ("127.0.0.1:2379") is http. Only scheme,
 *   host and port of the URL are used; path is the request target ("/pd/api/v1/health").
 * - The cert and key are read for each call; a key that does not match its certificate, an
 *   unreadable file or a password-protected key is an error naming the file (never its
 *   contents).
 * - On failure it returns -1 and writes ONE line into err that names the cause from the
 *   user's point of view, e.g.
 *     "cannot connect to 127.0.0.1:2379: Connection refused"
 *     "the server refused our certificate: its Common Name is not in the server's allow-list (TLS alert access_denied)"
 *     "the server's certificate is not trusted: it is not signed by the CA in /x/ca.pem"
 *     "the server's certificate does not match host 127.0.0.2"
 *     "the server requires a client certificate and we presented none (TLS alert handshake_failure)"
 * - On success it returns 0 with resp->status the HTTP status and resp->body a NUL-terminated
 *   heap buffer (free with https_response_free) of resp->body_len bytes (never NULL).
 */
#ifndef TISIM_TLSDIAL_H
#define TISIM_TLSDIAL_H

#include <stdbool.h>
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

/* Parses an HTTP/1.x response held in buf[0..len). eof: the peer has closed the connection.
 * Returns 1 when the response is complete (resp filled; 1xx interim responses are skipped),
 * 0 when more bytes are needed, -1 with err when the bytes are not a valid response (or the
 * connection closed before the response was complete). */
int http_response_parse(const char *buf, size_t len, bool eof, struct https_response *resp,
                        char *err, size_t errlen);

#endif
