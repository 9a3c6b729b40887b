/* testutil.h — small helpers shared by the cmocka unit tests (header only). */
#ifndef TISIM_TESTUTIL_H
#define TISIM_TESTUTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

#endif
