/* tidbctl.c — tidb-ctl's flags, commands and printing. See tidbctl.h. */
#include "tidbctl.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "flags.h"
#include "log.h"
#include "url.h"

#define TIDBCTL_MAX_WORDS 16

void tidbctl_usage(FILE *out)
{
    fputs("TiDB Controller (tidb-ctl) is a command line tool for TiDB Server (tidb-server).\n"
          "\n"
          "Usage:\n"
          "  tidb-ctl [flags] [COMMAND]\n"
          "\n"
          "Commands:\n"
          "  (none)                    show the server status (connections, version)\n"
          "  info                      show the server info (ports, DDL id, start time)\n"
          "  schema                    list all databases\n"
          "  schema in DB [-n TABLE]   list the tables of DB, or show TABLE\n"
          "  help                      show this help\n"
          "\n"
          "Flags:\n"
          "  -u, --url URL             the status port, e.g. https://127.0.0.1:10080\n"
          "      --host IP             TiDB server host (default " TIDBCTL_DEFAULT_HOST ")\n"
          "      --port PORT           TiDB server status port (default 10080)\n"
          "      --ca PATH             TLS CA path: the CA of tidb-server's cluster certificate\n"
          "      --ssl-cert PATH       TLS cert path: our certificate (when tidb-server's\n"
          "                            cluster-verify-cn is set, its CN must be listed there)\n"
          "      --ssl-key PATH        TLS key path\n"
          "  -n, --name TABLE          with 'schema in DB': one table\n"
          "  -h, --help                show this help\n"
          "\n"
          "With --ca the status port is reached over https (a URL without a scheme, or an\n"
          "http:// one, then means https). Exit status: 0 on success, 1 on any error (bad\n"
          "usage, transport failure, or a non-2xx answer, printed as \"[STATUS] message\").\n",
          out);
}

static bool given(const char *s)
{
    return s && *s;
}

/* ------------------------------------------------------------------------------------------ */
/* Flags and words                                                                             */

struct opts {
    const char *url, *host, *port, *ca, *cert, *key, *name;
    bool help, version;
    char *words[TIDBCTL_MAX_WORDS];
    int nwords;
};

/* Flags anywhere among the words, as cobra takes them; after "--" everything is a word. */
static int parse_flags(int argc, char **argv, struct opts *o, char *err, size_t errlen)
{
    const struct flag table[] = {
        {"url", 'u', false, &o->url, NULL, ""},       {"host", 0, false, &o->host, NULL, ""},
        {"port", 0, false, &o->port, NULL, ""},       {"ca", 0, false, &o->ca, NULL, ""},
        {"ssl-cert", 0, false, &o->cert, NULL, ""},   {"ssl-key", 0, false, &o->key, NULL, ""},
        {"name", 'n', false, &o->name, NULL, ""},     {"help", 'h', true, NULL, &o->help, ""},
        {"version", 'V', true, NULL, &o->version, ""},
    };
    const size_t n = sizeof table / sizeof table[0];
    bool rest_are_words = false;
    for (int pos = 1; pos < argc;) {
        int at = pos;
        if (!rest_are_words) {
            int r = flags_parse(table, n, argc - pos + 1, argv + pos - 1, err, errlen);
            if (r < 0)
                return -1;
            at = pos - 1 + r;
            rest_are_words = at - 1 >= pos && strcmp(argv[at - 1], "--") == 0;
        }
        if (at >= argc)
            break;
        if (o->nwords >= TIDBCTL_MAX_WORDS)
            return errorf(err, errlen, "too many arguments");
        o->words[o->nwords++] = argv[at];
        pos = at + 1;
    }
    return 0;
}

/* Appends sep as it is, then name with unreserved bytes as they are and the rest as %XX. */
static int append_name(char *path, size_t len, const char *sep, const char *name)
{
    size_t n = strlen(path);
    int w = snprintf(path + n, len - n, "%s", sep);
    if (w < 0 || (size_t)w >= len - n)
        return -1;
    n += (size_t)w;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        bool plain = isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        w = plain ? snprintf(path + n, len - n, "%c", *p)
                  : snprintf(path + n, len - n, "%%%02X", *p);
        if (w < 0 || (size_t)w >= len - n)
            return -1;
        n += (size_t)w;
    }
    return 0;
}

static int plan_schema(const struct opts *o, struct tidbctl_call *call, char *err,
                       size_t errlen)
{
    char *const *w = o->words;
    if (o->nwords == 1 && !o->name) {
        snprintf(call->path, sizeof call->path, "/schema");
        return 0;
    }
    if (o->nwords >= 2 && strcmp(w[1], "tid") == 0)
        return errorf(err, errlen, "schema tid: tisim's status port has no lookup by table id; "
                                 "use 'schema in DB -n TABLE'");
    if (o->nwords < 2 || strcmp(w[1], "in") != 0)
        return errorf(err, errlen, "usage: schema | schema in DB [-n TABLE]");
    if (o->nwords != 3 || !*w[2])
        return errorf(err, errlen, "schema in: expect one argument as database name");
    if (o->name && !*o->name)
        return errorf(err, errlen, "schema in %s -n: the table name is empty", w[2]);
    call->path[0] = '\0';
    if (append_name(call->path, sizeof call->path, "/schema/", w[2]) != 0 ||
        (o->name && append_name(call->path, sizeof call->path, "/", o->name) != 0))
        return errorf(err, errlen, "schema in: the names are too long");
    return 0;
}

static int plan_words(const struct opts *o, struct tidbctl_call *call, char *err,
                      size_t errlen)
{
    if (o->nwords == 0) {
        snprintf(call->path, sizeof call->path, "/status");
    } else if (strcmp(o->words[0], "help") == 0) {
        call->action = TIDBCTL_HELP;
        return 0;
    } else if (strcmp(o->words[0], "info") == 0) {
        if (o->nwords != 1)
            return errorf(err, errlen, "usage: info (takes no arguments)");
        snprintf(call->path, sizeof call->path, "/info");
    } else if (strcmp(o->words[0], "schema") == 0) {
        return plan_schema(o, call, err, errlen);
    } else {
        return errorf(err, errlen, "unknown command '%s'", o->words[0]);
    }
    if (o->name)
        return errorf(err, errlen, "-n/--name goes with 'schema in DB' only");
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Where to, and how                                                                           */

static int check_tls_flags(const struct opts *o, char *err, size_t errlen)
{
    if (given(o->cert) != given(o->key))
        return errorf(err, errlen, "--ssl-cert and --ssl-key must be given together");
    if (given(o->cert) && !given(o->ca))
        return errorf(err, errlen, "--ssl-cert/--ssl-key need --ca to verify tidb-server's "
                                 "certificate");
    return 0;
}

/* -u URL: scheme-less means https with --ca; with --ca http is upgraded, without it https
 * is refused. Only scheme, host and port. */
static int url_from_flag(const char *text, bool tls, struct url *u, char *err, size_t errlen)
{
    char why[400];
    if (url_parse(text, false, u, why, sizeof why) != 0)
        return errorf(err, errlen, "-u: %s", why);
    if (u->path[0] && strcmp(u->path, "/") != 0)
        return errorf(err, errlen, "-u %s: give the status port's address only, without a path",
                    text);
    if (!tls && url_is_https(u))
        return errorf(err, errlen, "https URL needs --ca (and --ssl-cert/--ssl-key when "
                                 "tidb-server's cluster-verify-cn is set)");
    return 0;
}

/* --host IP --port PORT, as real tidb-ctl (defaults 127.0.0.1:10080). */
static int url_from_host(const struct opts *o, struct url *u, char *err, size_t errlen)
{
    const char *host = given(o->host) ? o->host : TIDBCTL_DEFAULT_HOST;
    long port = TIDBCTL_DEFAULT_PORT;
    if (o->port) {
        char *end = NULL;
        errno = 0;
        port = strtol(o->port, &end, 10);
        if (!*o->port || *end || errno || port < 1 || port > 65535)
            return errorf(err, errlen, "--port '%s': give a port number from 1 to 65535",
                        o->port);
    }
    char text[400], why[400];
    bool v6 = strchr(host, ':') && host[0] != '[';
    int w = snprintf(text, sizeof text, v6 ? "[%s]:%ld" : "%s:%ld", host, port);
    if (w < 0 || (size_t)w >= sizeof text || url_parse(text, false, u, why, sizeof why) != 0 ||
        u->path[0])
        return errorf(err, errlen, "--host '%.256s': give an IP address (or a host name)", host);
    return 0;
}

static int make_url(const struct opts *o, struct tidbctl_call *call, char *err, size_t errlen)
{
    bool tls = given(o->ca);
    struct url u;
    if (o->url && (o->host || o->port))
        return errorf(err, errlen, "give either -u URL or --host/--port, not both");
    if (o->url ? url_from_flag(o->url, tls, &u, err, errlen)
               : url_from_host(o, &u, err, errlen))
        return -1;
    char hp[URL_HOST_PORT_LEN];
    url_host_port(&u, hp, sizeof hp);
    snprintf(call->url, sizeof call->url, "%s://%s", tls ? "https" : "http", hp);
    if (tls)
        call->tls = (struct httpcall_tls){.ca_path = o->ca,
                                          .cert_path = given(o->cert) ? o->cert : NULL,
                                          .key_path = given(o->key) ? o->key : NULL};
    return 0;
}

int tidbctl_parse(int argc, char **argv, struct tidbctl_call *call, char *err, size_t errlen)
{
    struct opts o = {0};
    memset(call, 0, sizeof *call);
    call->action = TIDBCTL_GET;
    if (parse_flags(argc, argv, &o, err, errlen) != 0)
        return -1;
    if (o.help || o.version) {
        call->action = o.help ? TIDBCTL_HELP : TIDBCTL_VERSION;
        return 0;
    }
    if (plan_words(&o, call, err, errlen) != 0)
        return -1;
    if (call->action == TIDBCTL_HELP)
        return 0;
    return check_tls_flags(&o, err, errlen) != 0 ? -1 : make_url(&o, call, err, errlen);
}

/* ------------------------------------------------------------------------------------------ */
/* Printing and running                                                                        */

/* The message of an error answer on one line: a JSON string unquoted, an object's
 * "message"/"error" field, else the body trimmed (what pd-ctl prints for PD). */
static void error_message(const char *body, size_t len, char *buf, size_t buflen)
{
    json_error_t jerr;
    json_t *j = len ? json_loadb(body, len, JSON_DECODE_ANY, &jerr) : NULL;
    json_t *m = json_is_object(j) ? json_object_get(j, "message") : j;
    if (json_is_object(j) && !json_is_string(m))
        m = json_object_get(j, "error");
    if (json_is_string(m)) {
        snprintf(buf, buflen, "%s", json_string_value(m));
    } else {
        while (len && isspace((unsigned char)body[len - 1]))
            len--;
        while (len && isspace((unsigned char)*body)) {
            body++;
            len--;
        }
        snprintf(buf, buflen, "%.*s", (int)(len > 4000 ? 4000 : len), body);
    }
    json_decref(j);
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

int tidbctl_print(int status, const char *body, size_t body_len, FILE *out, FILE *err)
{
    if (status < 200 || status > 299) {
        char msg[4096];
        error_message(body, body_len, msg, sizeof msg);
        fprintf(err, "[%d] %s\n", status, msg);
        return 1;
    }
    json_error_t jerr;
    json_t *j = body_len ? json_loadb(body, body_len, JSON_DECODE_ANY, &jerr) : NULL;
    char *text = j ? json_dumps(j, JSON_INDENT(4) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    if (text)
        fprintf(out, "%s\n", text);
    else if (body_len)
        fprintf(out, "%.*s%s", (int)body_len, body, body[body_len - 1] == '\n' ? "" : "\n");
    free(text);
    json_decref(j);
    return 0;
}

int tidbctl_main(int argc, char **argv, FILE *out, FILE *err)
{
    struct tidbctl_call call;
    char why[1024];
    if (tidbctl_parse(argc, argv, &call, why, sizeof why) != 0) {
        fprintf(err, "tidb-ctl: %s\nRun 'tidb-ctl --help' for usage.\n", why);
        return 1;
    }
    if (call.action == TIDBCTL_HELP) {
        tidbctl_usage(out);
        return 0;
    }
    if (call.action == TIDBCTL_VERSION) {
        fprintf(out, "Release Version: tisim tidb-ctl\n");
        return 0;
    }
    struct httpcall_response resp;
    if (httpcall(call.url, "GET", call.path, NULL, call.tls.ca_path ? &call.tls : NULL,
                 "tidb-ctl", TIDBCTL_TIMEOUT_MS, &resp, why, sizeof why) != 0) {
        fprintf(err, "tidb-ctl: %s\n", why);
        return 1;
    }
    int rc = tidbctl_print(resp.status, resp.body, resp.body_len, out, err);
    httpcall_response_free(&resp);
    return rc;
}
