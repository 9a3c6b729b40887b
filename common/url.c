#include "url.h"

#include <stdio.h>
#include <string.h>

static int parse_port(const char *s, size_t len, int *port)
{
    if (len == 0 || len > 5)
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

static int fail(char *err, size_t errlen, const char *text, const char *why)
{
    snprintf(err, errlen, "bad URL '%s': %s", text, why);
    return -1;
}

int url_parse(const char *text, bool scheme_required, struct url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    const char *p = text;
    const char *sep = strstr(text, "://");
    if (sep) {
        size_t n = (size_t)(sep - text);
        if ((n == 4 && strncmp(text, "http", 4) == 0) || (n == 5 && strncmp(text, "https", 5) == 0))
            memcpy(u->scheme, text, n);
        else
            return fail(err, errlen, text, "scheme must be http or https");
        p = sep + 3;
    } else if (scheme_required) {
        return fail(err, errlen, text, "expected http://host:port or https://host:port");
    }
    const char *hend, *rest;
    if (*p == '[') {
        hend = strchr(p, ']');
        if (!hend)
            return fail(err, errlen, text, "missing ']' after IPv6 address");
        p++;
        rest = hend + 1;
    } else {
        hend = p + strcspn(p, ":/");
        rest = hend;
    }
    size_t hlen = (size_t)(hend - p);
    if (hlen == 0 || hlen >= sizeof u->host)
        return fail(err, errlen, text, "missing or too long host");
    memcpy(u->host, p, hlen);
    u->port = strcmp(u->scheme, "https") == 0 ? 443 : 80;
    if (*rest == ':') {
        size_t plen = strcspn(rest + 1, "/");
        if (parse_port(rest + 1, plen, &u->port) != 0)
            return fail(err, errlen, text, "port must be a number from 1 to 65535");
        rest += 1 + plen;
    } else if (!u->scheme[0]) {
        return fail(err, errlen, text, "missing port");
    }
    if (*rest && *rest != '/')
        return fail(err, errlen, text, "unexpected text after host");
    if (strlen(rest) >= sizeof u->path)
        return fail(err, errlen, text, "path too long");
    strcpy(u->path, rest);
    return 0;
}

bool url_is_https(const struct url *u)
{
    return strcmp(u->scheme, "https") == 0;
}

void url_host_port(const struct url *u, char *buf, size_t len)
{
    if (strchr(u->host, ':'))
        snprintf(buf, len, "[%s]:%d", u->host, u->port);
    else
        snprintf(buf, len, "%s:%d", u->host, u->port);
}
