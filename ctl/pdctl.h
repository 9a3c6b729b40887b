/* pdctl.h — the commands of pd-ctl (PD Control), as real PD's pd-ctl runs them.
 *
 * Contract:
 * - pdctl_plan maps a command line ("store 1", "config show all", "tso 4242") to one PD HTTP
 *   API call (method + path) and a way to print the answer, or to a local action (decoding a
 *   TSO, printing help). Bad commands or arguments: -1 with a one-line err.
 * - pdctl_print prints a response like real pd-ctl: 2xx JSON pretty with a 2-space indent in
 *   the server's key order (a body that is not JSON is printed as it is); `tso` prints the
 *   new timestamp as one decimal line; `config show` only the "replication" and "schedule"
 *   parts. A non-2xx answer is "[STATUS] message" on err. Returns the exit status (0 or 1).
 * - pdctl_run plans, calls PD through httpcall (the daemons' HTTP client and TLS transport;
 *   trying each comma-separated endpoint until one answers) and prints. Transport failure: exactly one line "pd-ctl: <why>" on err.
 *   Exit status: 0 success, 1 any failure (usage errors included).
 * - pdctl_interactive reads commands from in, one per line (a "» " prompt when in is a
 *   terminal), until EOF, "exit" or "quit"; failures are printed and the loop goes on.
 * - pdctl_endpoint_url normalises an endpoint the way real pd-ctl does: no scheme means https
 *   when a CA is given, http otherwise; with a CA an http:// URL is upgraded to https://.
 */
#ifndef TISIM_PDCTL_H
#define TISIM_PDCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "httpcall.h"

#define PDCTL_DEFAULT_URL "http://127.0.0.1:2379"

struct pdctl {
    const char *pd;        /* "https://127.0.0.1:2379" or a comma-separated list */
    struct httpcall_tls tls; /* ca_path NULL: no TLS */
    int timeout_ms;
    FILE *out;
    FILE *err;
};

enum pdctl_action {
    PDCTL_HTTP_JSON,    /* call PD, print the JSON answer */
    PDCTL_HTTP_CONFIG,  /* call PD, print parts of the config (filter) */
    PDCTL_HTTP_TSO,     /* call PD, print the "tso" field */
    PDCTL_DECODE_TSO,   /* no request: decode tso_arg */
    PDCTL_HELP,         /* print usage */
};

struct pdctl_call {
    enum pdctl_action action;
    const char *method;
    char path[128];
    const char *filter[2]; /* PDCTL_HTTP_CONFIG: top-level keys to keep; NULL: all */
    unsigned long long tso_arg;
};

int pdctl_plan(int argc, char **argv, struct pdctl_call *call, char *err, size_t errlen);
int pdctl_print(const struct pdctl_call *call, int status, const char *body, size_t body_len,
                FILE *out, FILE *err);
int pdctl_endpoint_url(const char *endpoint, bool have_ca, char *buf, size_t len);
int pdctl_run(const struct pdctl *c, int argc, char **argv);
int pdctl_interactive(const struct pdctl *c, FILE *in);
void pdctl_usage(FILE *out);

#endif
