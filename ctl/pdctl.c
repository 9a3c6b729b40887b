#include "pdctl.h"

#include "log.h"
#include "tso.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void pdctl_usage(FILE *out)
{
    fputs("PD Control (pd-ctl) is a command line tool for PD.\n"
          "\n"
          "Usage:\n"
          "  pd-ctl [flags] COMMAND [ARGS]\n"
          "  pd-ctl [flags]                  interactive: read commands from stdin\n"
          "\n"
          "Commands:\n"
          "  health                 show the health of the PD members\n"
          "  member                 show the PD members\n"
          "  member leader show     show the PD leader\n"
          "  store [ID]             show all stores, or the store with ID\n"
          "  region [ID]            show all regions, or the region with ID\n"
          "  cluster                show the cluster information\n"
          "  config show [all|replication|schedule]\n"
          "                         show the replication and schedule config (all: everything)\n"
          "  tso [TSO]              get a new timestamp from PD, or decode TSO locally\n"
          "  help                   show this help\n"
          "\n"
          "Flags:\n"
          "  -u, --pd URL           address of PD, comma-separated for several (env PD_ADDR;\n"
          "                         default " PDCTL_DEFAULT_URL ")\n"
          "      --cacert PATH      CA certificate to verify PD's certificate (env CA_PATH)\n"
          "      --cert PATH        client certificate for mutual TLS (env CERT_PATH)\n"
          "      --key PATH         private key of --cert (env KEY_PATH)\n"
          "  -i, --interact         run in interactive mode\n"
          "  -d, --detach           accepted for compatibility (single command mode)\n"
          "  -h, --help             show this help\n"
          "\n"
          "An https URL needs --cacert, and --cert/--key when PD requires client certificates.\n"
          "A URL without a scheme means https when --cacert is given, http otherwise.\n"
          "Exit status: 0 on success, 1 on any error (bad usage, transport failure, or a\n"
          "non-2xx answer from PD, printed as \"[STATUS] message\").\n",
          out);
}

/* A positive decimal ID (uint64). */
static int parse_id(const char *s, unsigned long long *out)
{
    if (!s || !*s || strlen(s) > 20)
        return -1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno || v == 0)
        return -1;
    *out = v;
    return 0;
}

int pdctl_plan(int argc, char **argv, struct pdctl_call *call, char *err, size_t errlen)
{
    memset(call, 0, sizeof *call);
    call->action = PDCTL_HTTP_JSON;
    call->method = "GET";
    if (argc < 1)
        return errorf(err, errlen, "no command given");
    const char *cmd = argv[0];
    if (strcmp(cmd, "help") == 0) {
        call->action = PDCTL_HELP;
        return 0;
    }
    if (strcmp(cmd, "health") == 0) {
        if (argc != 1)
            return errorf(err, errlen, "usage: health (takes no arguments)");
        snprintf(call->path, sizeof call->path, "/pd/api/v1/health");
        return 0;
    }
    if (strcmp(cmd, "member") == 0) {
        if (argc == 1) {
            snprintf(call->path, sizeof call->path, "/pd/api/v1/members");
            return 0;
        }
        if (argc == 3 && strcmp(argv[1], "leader") == 0 && strcmp(argv[2], "show") == 0) {
            snprintf(call->path, sizeof call->path, "/pd/api/v1/leader");
            return 0;
        }
        return errorf(err, errlen, "usage: member | member leader show");
    }
    if (strcmp(cmd, "store") == 0 || strcmp(cmd, "region") == 0) {
        bool store = cmd[0] == 's';
        if (argc == 1) {
            snprintf(call->path, sizeof call->path, store ? "/pd/api/v1/stores"
                                                          : "/pd/api/v1/regions");
            return 0;
        }
        unsigned long long id;
        if (argc != 2 || parse_id(argv[1], &id) != 0)
            return errorf(err, errlen,
                             store ? "usage: store [ID] (ID is a positive integer, got '%s')"
                                   : "usage: region [ID] (ID is a positive integer, got '%s')",
                             argc >= 2 ? argv[1] : "");
        snprintf(call->path, sizeof call->path,
                 store ? "/pd/api/v1/store/%llu" : "/pd/api/v1/region/id/%llu", id);
        return 0;
    }
    if (strcmp(cmd, "cluster") == 0) {
        if (argc != 1)
            return errorf(err, errlen, "usage: cluster (takes no arguments)");
        snprintf(call->path, sizeof call->path, "/pd/api/v1/cluster");
        return 0;
    }
    if (strcmp(cmd, "config") == 0) {
        if (argc < 2 || argc > 3 || strcmp(argv[1], "show") != 0)
            return errorf(err, errlen, "usage: config show [all|replication|schedule]");
        call->action = PDCTL_HTTP_CONFIG;
        snprintf(call->path, sizeof call->path, "/pd/api/v1/config");
        if (argc == 2) {
            call->filter[0] = "replication";
            call->filter[1] = "schedule";
        } else if (strcmp(argv[2], "all") == 0) {
            /* everything */
        } else if (strcmp(argv[2], "replication") == 0 || strcmp(argv[2], "schedule") == 0) {
            call->filter[0] = argv[2][0] == 'r' ? "replication" : "schedule";
        } else {
            return errorf(err, errlen,
                             "usage: config show [all|replication|schedule] (got '%s')",
                             argv[2]);
        }
        return 0;
    }
    if (strcmp(cmd, "tso") == 0) {
        if (argc == 1) {
            call->action = PDCTL_HTTP_TSO;
            call->method = "POST";
            snprintf(call->path, sizeof call->path, "/pd/api/v1/tso");
            return 0;
        }
        if (argc != 2)
            return errorf(err, errlen, "usage: tso [TSO]");
        uint64_t ts;
        char perr[160];
        if (tso_parse(argv[1], &ts, perr, sizeof perr) != 0)
            return errorf(err, errlen, "Failed to parse TSO: %s", perr);
        call->action = PDCTL_DECODE_TSO;
        call->tso_arg = ts;
        return 0;
    }
    return errorf(err, errlen, "unknown command '%s'", cmd);
}

/* The message of an error answer on one line: a JSON string unquoted, an object's
 * "message"/"error" field, else the body trimmed. */
static void error_message(const char *body, size_t len, char *buf, size_t buflen)
{
    buf[0] = '\0';
    json_error_t jerr;
    json_t *j = len ? json_loadb(body, len, JSON_DECODE_ANY, &jerr) : NULL;
    const char *msg = NULL;
    if (j && json_is_string(j))
        msg = json_string_value(j);
    else if (j && json_is_object(j)) {
        json_t *m = json_object_get(j, "message");
        if (!json_is_string(m))
            m = json_object_get(j, "error");
        if (json_is_string(m))
            msg = json_string_value(m);
    }
    if (msg)
        snprintf(buf, buflen, "%s", msg);
    else {
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

static void print_json(const json_t *j, FILE *out)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (s) {
        fprintf(out, "%s\n", s);
        free(s);
    }
}

static void print_raw(const char *body, size_t len, FILE *out)
{
    fwrite(body, 1, len, out);
    if (len && body[len - 1] != '\n')
        fputc('\n', out);
}

int pdctl_print(const struct pdctl_call *call, int status, const char *body, size_t body_len,
                FILE *out, FILE *err)
{
    if (status < 200 || status > 299) {
        char msg[4096];
        error_message(body, body_len, msg, sizeof msg);
        fprintf(err, "[%d] %s\n", status, msg);
        return 1;
    }
    json_error_t jerr;
    json_t *j = body_len ? json_loadb(body, body_len, JSON_DECODE_ANY, &jerr) : NULL;
    int rc = 0;
    switch (call->action) {
    case PDCTL_HTTP_TSO: {
        json_t *t = j && json_is_object(j) ? json_object_get(j, "tso") : NULL;
        if (json_is_integer(t) && json_integer_value(t) >= 0) {
            fprintf(out, "%" JSON_INTEGER_FORMAT "\n", json_integer_value(t));
        } else {
            fprintf(err, "pd-ctl: PD's answer to the TSO request has no \"tso\" number\n");
            rc = 1;
        }
        break;
    }
    case PDCTL_HTTP_CONFIG:
        if (j && json_is_object(j) && call->filter[0]) {
            json_t *sel = json_object();
            for (size_t i = 0; i < 2 && call->filter[i]; i++) {
                json_t *v = json_object_get(j, call->filter[i]);
                if (v)
                    json_object_set(sel, call->filter[i], v);
            }
            /* A single part is printed on its own, as `config show replication` does. */
            if (!call->filter[1] && json_object_get(sel, call->filter[0]))
                print_json(json_object_get(sel, call->filter[0]), out);
            else
                print_json(sel, out);
            json_decref(sel);
            break;
        }
        /* fall through */
    default:
        if (j)
            print_json(j, out);
        else
            print_raw(body, body_len, out);
        break;
    }
    json_decref(j);
    return rc;
}

int pdctl_endpoint_url(const char *endpoint, bool have_ca, char *buf, size_t len)
{
    while (*endpoint == ' ')
        endpoint++;
    size_t n = strlen(endpoint);
    while (n && endpoint[n - 1] == ' ')
        n--;
    if (n == 0)
        return -1;
    const char *rest = endpoint;
    const char *scheme;
    if (n >= 8 && strncasecmp(endpoint, "https://", 8) == 0) {
        scheme = "https://";
        rest += 8;
    } else if (n >= 7 && strncasecmp(endpoint, "http://", 7) == 0) {
        scheme = have_ca ? "https://" : "http://";
        rest += 7;
    } else if (strstr(endpoint, "://")) {
        /* Leave it: url_parse names the bad scheme. */
        scheme = "";
    } else {
        scheme = have_ca ? "https://" : "http://";
    }
    int w = snprintf(buf, len, "%s%.*s", scheme, (int)(n - (size_t)(rest - endpoint)), rest);
    return (w < 0 || (size_t)w >= len) ? -1 : 0;
}

int pdctl_run(const struct pdctl *c, int argc, char **argv)
{
    struct pdctl_call call;
    char err[1024];
    if (pdctl_plan(argc, argv, &call, err, sizeof err) != 0) {
        fprintf(c->err, "pd-ctl: %s\nRun 'pd-ctl --help' for usage.\n", err);
        return 1;
    }
    if (call.action == PDCTL_HELP) {
        pdctl_usage(c->out);
        return 0;
    }
    if (call.action == PDCTL_DECODE_TSO) {
        char text[256];
        tso_describe(call.tso_arg, text, sizeof text);
        fputs(text, c->out);
        return 0;
    }

    bool have_ca = c->tls.ca_path && *c->tls.ca_path;
    const char *list = c->pd && *c->pd ? c->pd : PDCTL_DEFAULT_URL;
    char *copy = strdup(list);
    if (!copy) {
        fprintf(c->err, "pd-ctl: out of memory\n");
        return 1;
    }
    int rc = 1;
    bool tried = false;
    char *save = NULL;
    for (char *ep = strtok_r(copy, ",", &save); ep; ep = strtok_r(NULL, ",", &save)) {
        char url[1024];
        if (pdctl_endpoint_url(ep, have_ca, url, sizeof url) != 0)
            continue;
        tried = true;
        if (strncasecmp(url, "https://", 8) == 0 && !have_ca) {
            snprintf(err, sizeof err,
                     "https URL needs --cacert (and --cert/--key for a cluster with mutual TLS)");
            break; /* a usage error: the same for every endpoint */
        }
        struct httpcall_response resp;
        if (httpcall(url, call.method, call.path, NULL, have_ca ? &c->tls : NULL, "pd-ctl",
                     c->timeout_ms, &resp, err, sizeof err) != 0)
            continue; /* try the next endpoint; err keeps the last failure */
        rc = pdctl_print(&call, resp.status, resp.body, resp.body_len, c->out, c->err);
        httpcall_response_free(&resp);
        free(copy);
        fflush(c->out);
        return rc;
    }
    if (!tried)
        snprintf(err, sizeof err, "no PD address given (use -u URL)");
    fprintf(c->err, "pd-ctl: %s\n", err);
    free(copy);
    return rc;
}

int pdctl_interactive(const struct pdctl *c, FILE *in)
{
    bool tty = isatty(fileno(in));
    char *line = NULL;
    size_t cap = 0;
    int last = 0;
    for (;;) {
        if (tty) {
            fputs("\xc2\xbb ", c->out); /* "» " like real pd-ctl */
            fflush(c->out);
        }
        ssize_t n = getline(&line, &cap, in);
        if (n < 0)
            break;
        char *words[32];
        int nw = 0;
        char *save = NULL;
        for (char *w = strtok_r(line, " \t\r\n", &save); w && nw < 32;
             w = strtok_r(NULL, " \t\r\n", &save))
            words[nw++] = w;
        if (nw == 0)
            continue;
        if (strcmp(words[0], "exit") == 0 || strcmp(words[0], "quit") == 0)
            break;
        last = pdctl_run(c, nw, words);
        fflush(c->out);
        fflush(c->err);
    }
    if (tty)
        fputc('\n', c->out);
    free(line);
    return tty ? 0 : last;
}
