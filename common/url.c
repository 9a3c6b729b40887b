#include "url.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static int fail(char *err, size_t errlen, const char *text, const char *why)
{
    snprintf(err, errlen, "bad URL '%s': %s", text, why);
    return -1;
}

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

/* Consumes "http://" or "https://" (any case) at the start of *p; none: scheme stays "". */
static int parse_scheme(const char **p, bool required, struct url *u, char *err, size_t errlen,
                        const char *text)
{
    const char *sep = strstr(*p, "://");
    if (!sep) {
        if (required)
            return fail(err, errlen, text, "expected http://host:port or https://host:port");
        return 0;
    }
    size_t n = (size_t)(sep - *p);
    if (n == 4 && strncasecmp(*p, "http", 4) == 0)
        strcpy(u->scheme, "http");
    else if (n == 5 && strncasecmp(*p, "https", 5) == 0)
        strcpy(u->scheme, "https");
    else
        return fail(err, errlen, text, "scheme must be http or https");
    *p = sep + 3;
    return 0;
}

static bool host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

static int check_host(const struct url *u, bool bracketed, char *err, size_t errlen,
                      const char *text)
{
    char why[sizeof u->host + 80];
    if (bracketed) {
        struct in6_addr a;
        if (inet_pton(AF_INET6, u->host, &a) == 1)
            return 0;
        snprintf(why, sizeof why, "'%s' is not an IPv6 address", u->host);
        return fail(err, errlen, text, why);
    }
    for (const char *c = u->host; *c; c++) {
        if (!host_char_ok(*c)) {
            snprintf(why, sizeof why,
                     "host '%s' has a character other than letters, digits, '.', '-' and '_'",
                     u->host);
            return fail(err, errlen, text, why);
        }
    }
    return 0;
}

/* Host (bracketed IPv6 or name) at *p; *p moves past it. */
static int parse_host(const char **p, struct url *u, char *err, size_t errlen, const char *text)
{
    const char *start = *p, *end = *p + strcspn(*p, ":/");
    bool bracketed = *start == '[';
    if (bracketed) {
        if (!(end = strchr(start, ']')))
            return fail(err, errlen, text, "missing ']' after IPv6 address");
        start++;
    }
    size_t len = (size_t)(end - start);
    if (len == 0)
        return fail(err, errlen, text, "missing host");
    if (len >= sizeof u->host)
        return fail(err, errlen, text, "host is longer than 255 bytes");
    memcpy(u->host, start, len);
    u->host[len] = '\0';
    *p = end + (bracketed ? 1 : 0);
    return check_host(u, bracketed, err, errlen, text);
}

int url_parse(const char *text, bool scheme_required, struct url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    const char *p = text;
    if (parse_scheme(&p, scheme_required, u, err, errlen, text) != 0 ||
        parse_host(&p, u, err, errlen, text) != 0)
        return -1;
    u->port = url_is_https(u) ? 443 : 80;
    if (*p == ':') {
        size_t plen = strcspn(p + 1, "/");
        if (parse_port(p + 1, plen, &u->port) != 0)
            return fail(err, errlen, text, "port must be a number from 1 to 65535");
        p += 1 + plen;
    } else if (!u->scheme[0]) {
        return fail(err, errlen, text, "missing port");
    }
    if (*p && *p != '/')
        return fail(err, errlen, text, "unexpected text after host");
    if (strlen(p) >= sizeof u->path)
        return fail(err, errlen, text, "path is longer than 511 bytes");
    strcpy(u->path, p);
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

void url_sockaddr_str(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(buf, len, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    } else {
        snprintf(buf, len, "unknown");
    }
}
