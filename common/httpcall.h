/* httpcall.h — one blocking HTTP(S) call over the shared transport, for the ctl tools.
 *
 * pd-ctl (and tikv-ctl / tidb-ctl) make one request and wait for it. httpcall runs the
 * daemons' own HTTP client (http.h, evhttp) over the daemons' own TLS (tls.h) on a private
 * event_base until the reply arrives, so a TLS fix or diagnosis reaches tools and daemons
 * alike.
 *
 * Contract:
 * - url: "https://127.0.0.1:2379" or "http://127.0.0.1:2379" (url.h); only scheme, host and
 *   port are used. path is the request target ("/pd/api/v1/health"); body may be NULL.
 *   method: "GET", "POST", "PUT", "DELETE" or "HEAD".
 * - tls: NULL or tls->ca_path NULL means no TLS. An https URL needs a CA; an http URL with a
 *   CA is an error (never a silent downgrade). cert_path/key_path may both be NULL (no client
 *   certificate). role names us in the transport's logs ("pd-ctl").
 * - Every TLS diagnosis comes from the transport: a failure is the HTTP client's one line
 *   "HOST:PORT: <reason>" (e.g. "... the server's certificate is not trusted: ..."); file
 *   errors are tls_ctx_new's, naming the file. httpcall adds only its own deadline:
 *   "HOST:PORT: no reply within N ms".
 * - The call returns within timeout_ms (plus the blocking DNS lookup of a host NAME, as
 *   evhttp does) whatever the peer does: connect, handshake and reply all count.
 * - Returns 0 with resp->status (any HTTP status, 1xx-5xx) and resp->body (NUL-terminated heap
 *   buffer of resp->body_len bytes, never NULL; free with httpcall_response_free), or -1 with
 *   one line in err and resp zeroed. Everything the call allocates is freed before it returns.
 * - Logging goes through log.h: the transport logs each handshake (INFO when it succeeded,
 *   WARN when it failed). A tool that prints its own one-line error should log_open() at
 *   LOG_ERROR so those lines stay out of its output.
 */
#ifndef TISIM_HTTPCALL_H
#define TISIM_HTTPCALL_H

#include <stddef.h>

struct httpcall_tls {
    const char *ca_path;   /* NULL: plain http */
    const char *cert_path; /* NULL: no client certificate */
    const char *key_path;
};

struct httpcall_response {
    int status;
    char *body;
    size_t body_len;
};

int httpcall(const char *url, const char *method, const char *path, const char *body,
             const struct httpcall_tls *tls, const char *role, int timeout_ms,
             struct httpcall_response *resp, char *err, size_t errlen);
void httpcall_response_free(struct httpcall_response *resp);

#endif
