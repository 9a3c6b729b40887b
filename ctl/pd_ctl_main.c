/* pd-ctl: flags and environment → pdctl.c. */
#include "flags.h"
#include "log.h"
#include "pdctl.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env_or_null(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    /* The transport logs every handshake (INFO, failures at WARN); pd-ctl prints its own one
     * line "pd-ctl: <why>" instead, so only errors of the transport itself reach stderr. */
    log_open("pd-ctl", NULL, LOG_ERROR);

    const char *pd = env_or_null("PD_ADDR");
    const char *cacert = env_or_null("CA_PATH");
    const char *cert = env_or_null("CERT_PATH");
    const char *key = env_or_null("KEY_PATH");
    bool help = false, interact = false, detach = false, version = false;
    const struct flag table[] = {
        {"pd", 'u', false, &pd, NULL, "address of PD"},
        {"cacert", 0, false, &cacert, NULL, "CA certificate path"},
        {"cert", 0, false, &cert, NULL, "client certificate path"},
        {"key", 0, false, &key, NULL, "client key path"},
        {"interact", 'i', true, NULL, &interact, "interactive mode"},
        {"detach", 'd', true, NULL, &detach, "single command mode"},
        {"version", 'V', true, NULL, &version, "print version"},
        {"help", 'h', true, NULL, &help, "help"},
    };
    const size_t nflags = sizeof table / sizeof table[0];

    /* Flags may come before or after the command words, as cobra allows. */
    char **words = calloc((size_t)argc + 1, sizeof *words);
    if (!words) {
        fprintf(stderr, "pd-ctl: out of memory\n");
        return 1;
    }
    int nwords = 0;
    int pos = 1;
    char err[256];
    while (pos < argc) {
        int r = flags_parse(table, nflags, argc - pos + 1, argv + pos - 1, err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "pd-ctl: %s\nRun 'pd-ctl --help' for usage.\n", err);
            free(words);
            return 1;
        }
        int at = pos - 1 + r;
        if (at >= argc)
            break;
        if (strcmp(argv[at - 1], "--") == 0 && at - 1 >= pos) {
            while (at < argc)
                words[nwords++] = argv[at++];
            break;
        }
        words[nwords++] = argv[at];
        pos = at + 1;
    }

    int rc = 0;
    if (help) {
        pdctl_usage(stdout);
        goto out;
    }
    if (version) {
        printf("Release Version: tisim pd-ctl\n");
        goto out;
    }
    if ((cert != NULL) != (key != NULL)) {
        fprintf(stderr, "pd-ctl: --cert and --key must be given together\n");
        rc = 1;
        goto out;
    }
    if (cert && !cacert) {
        fprintf(stderr, "pd-ctl: --cert/--key need --cacert to verify PD's certificate\n");
        rc = 1;
        goto out;
    }

    struct pdctl c = {
        .pd = pd ? pd : PDCTL_DEFAULT_URL,
        .tls = {.ca_path = cacert, .cert_path = cert, .key_path = key},
        .timeout_ms = 10000,
        .out = stdout,
        .err = stderr,
    };
    if (nwords == 0 || interact) {
        if (nwords > 0) {
            rc = pdctl_run(&c, nwords, words);
            if (rc != 0)
                goto out;
        }
        rc = pdctl_interactive(&c, stdin);
    } else {
        rc = pdctl_run(&c, nwords, words);
    }
    (void)detach;
out:
    fflush(stdout);
    free(words);
    return rc;
}
