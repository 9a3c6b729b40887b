/* testutil.h — small helpers shared by the cmocka unit tests (header only). */
#ifndef TISIM_TESTUTIL_H
#define TISIM_TESTUTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certgen.h"
#include "tls.h"

/* Fails the test, showing both strings, unless needle occurs in hay. */
#define assert_contains(hay, needle)                                                          \
    do {                                                                                      \
        if (strstr((hay), (needle)) == NULL) {                                                \
            print_error("expected \"%s\" in \"%s\"\n", (needle), (hay));                      \
            fail();                                                                           \
        }                                                                                     \
    } while (0)

/* Removes path and everything below it (a test's temp dir); symlinks are not followed. */
static inline int tu_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return -1;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            size_t n = strlen(path) + strlen(e->d_name) + 2;
            char *child = malloc(n);
            if (child) {
                snprintf(child, n, "%s/%s", path, e->d_name);
                tu_rm_rf(child);
                free(child);
            }
        }
        if (d)
            closedir(d);
        return rmdir(path);
    }
    return unlink(path);
}

/* The whole file as a NUL-terminated heap string (caller frees), or NULL. */
static inline char *tu_read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n + 1 < cap)
            break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    if (buf)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A temp dir "/tmp/tisim-test-NAME-XXXXXX" (into dir) holding the cluster PKI of
 * certgen_pki (client cert CN client_cn, NULL for the default). 0, or -1 after printing why. */
static inline int tu_pki_dir(char *dir, size_t len, const char *name, const char *client_cn)
{
    char err[256];
    snprintf(dir, len, "/tmp/tisim-test-%s-XXXXXX", name);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "mkdtemp %s failed\n", dir);
        return -1;
    }
    struct certgen_pki_opts o = {.client_cn = client_cn};
    if (certgen_pki(dir, &o, err, sizeof err) != 0) {
        fprintf(stderr, "certgen_pki: %s\n", err);
        return -1;
    }
    return 0;
}

/* A tls ctx from dir's ca.pem and CERT.pem / CERT-key.pem; NULL after printing why. */
static inline struct tls_ctx *tu_tls_ctx(const char *dir, enum tls_side side, const char *cert,
                                         char *const *allowed, size_t n_allowed,
                                         enum tls_cn_check check)
{
    char ca[300], c[300], k[300], err[512];
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(c, sizeof c, "%s/%s.pem", dir, cert);
    snprintf(k, sizeof k, "%s/%s-key.pem", dir, cert);
    struct tls_opts o = {.role = side == TLS_SERVER ? "test-server" : "test-client",
                         .ca_path = ca,
                         .cert_path = c,
                         .key_path = k,
                         .allowed_cn = allowed,
                         .n_allowed_cn = n_allowed,
                         .cn_check = check};
    struct tls_ctx *ctx = tls_ctx_new(side, &o, err, sizeof err);
    if (!ctx)
        fprintf(stderr, "tls_ctx_new: %s\n", err);
    return ctx;
}

#endif
