/* url.h — parses the URLs tisim's flags take: "https://127.0.0.1:2379", "http://[::1]:2380",
 * "127.0.0.1:20160" (no scheme, when the caller allows it).
 *
 * Contract:
 * - url_parse fills u: scheme "http"/"https" (matched case-insensitively, stored lower-case;
 *   "" when absent and allowed), host without brackets, port (the scheme's default 80/443
 *   when absent; required without a scheme), path ("" or starting with '/', kept as given).
 *   A host is letters, digits, '.', '-' and '_' (at most 255 bytes), or an IPv6 address in
 *   brackets. Ports are 1-65535 in decimal digits. One URL per call: lists are the caller's.
 *   Returns 0, or -1 with err naming the URL and what is wrong
 *   ("bad URL 'x': port must be a number from 1 to 65535").
 * - url_host_port writes "host:port" ("[::1]:2379" for IPv6) for logs and Host headers; a
 *   buffer of URL_HOST_PORT_LEN always holds it.
 * - url_sockaddr_str writes a socket address the same way ("127.0.0.1:51234",
 *   "[::1]:2379"), "unknown" for other families: the peer addresses of logs and TLS facts.
 */
#ifndef TISIM_URL_H
#define TISIM_URL_H

#include <stdbool.h>
#include <stddef.h>

struct url {
    char scheme[8];
    char host[256];
    int port;
    char path[512];
};

/* "[" host "]" ":" 5 digits and the NUL. */
#define URL_HOST_PORT_LEN (sizeof((struct url *)0)->host + 9)

int url_parse(const char *text, bool scheme_required, struct url *u, char *err, size_t errlen);
bool url_is_https(const struct url *u);
void url_host_port(const struct url *u, char *buf, size_t len);
struct sockaddr;
void url_sockaddr_str(const struct sockaddr *sa, char *buf, size_t len);

#endif
