/* url.h — parses the URLs tisim's flags take: "https://127.0.0.1:2379", "http://[::1]:2380",
 * "127.0.0.1:20160" (no scheme), and comma-separated lists of them.
 *
 * Contract:
 * - url_parse fills u: scheme "http"/"https" (or "" when absent and allowed), host without
 *   brackets, port (the scheme's default 80/443 when absent), path ("" or starting with '/').
 *   Returns 0, or -1 with err naming what is wrong ("bad URL 'x': port must be 1-65535").
 * - url_host_port writes "host:port" ("[::1]:2379" for IPv6) for logs and Host headers.
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

int url_parse(const char *text, bool scheme_required, struct url *u, char *err, size_t errlen);
bool url_is_https(const struct url *u);
void url_host_port(const struct url *u, char *buf, size_t len);

#endif
