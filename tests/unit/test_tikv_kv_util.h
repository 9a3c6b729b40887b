/* test_tikv_kv_util.h — helpers shared by the storage engine's unit tests (header only). */
#ifndef TISIM_TEST_TIKV_KV_UTIL_H
#define TISIM_TEST_TIKV_KV_UTIL_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cipherfile.h"
#include "testutil.h"

static inline uint64_t kvt_fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

static inline int kvt_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A hash of every file name and its bytes in dir (not recursive), 0 if dir cannot be read. */
static inline uint64_t kvt_hash_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256)
        if (e->d_name[0] != '.')
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], kvt_cmp_names);
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        h = kvt_fnv(h, names[i], strlen(names[i]) + 1);
        FILE *f = fopen(path, "rb");
        char buf[4096];
        size_t r;
        while (f && (r = fread(buf, 1, sizeof buf, f)) > 0)
            h = kvt_fnv(h, buf, r);
        if (f)
            fclose(f);
        free(names[i]);
    }
    return h;
}

/* Keys derived from a token given as hex (the test's stand-in for a cipher-file). */
static inline void kvt_keys(const char *hex, struct cipher_keys *k)
{
    uint8_t tok[CIPHERFILE_MAX_TOKEN];
    size_t n = 0;
    char err[160];
    if (cipherfile_parse(hex, strlen(hex), tok, &n, err, sizeof err) != 0 ||
        cipherfile_derive(tok, n, k, err, sizeof err) != 0) {
        fprintf(stderr, "kvt_keys: %s\n", err);
        abort();
    }
}

#define KVT_KEY_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define KVT_KEY_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

#endif
