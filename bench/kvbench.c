/* kvbench — measurements for the storage engine, never assertions.
 *
 *   kvbench [--dir DIR] [--seconds N]
 *
 * 1. Sealing throughput of AES-256-GCM and ChaCha20-Poly1305 (mbedTLS, one core) for
 *    100-byte and 4 KB records: the candidates for the data files' cipher.
 * 2. Engine puts/s (100-byte values, every put durable before it counts) with 1 writer and
 *    with 64 concurrent writers (group commit), plaintext and encrypted, in fresh data dirs
 *    under DIR (default /var/tmp: it must be a real disk, not tmpfs, for fdatasync to cost
 *    what it costs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <mbedtls/chachapoly.h>
#include <mbedtls/gcm.h>

#include "cipherfile.h"
#include "kv_engine.h"

/* Removes a data dir this program made: its two files, then the dir. */
static void remove_dir(const char *dir)
{
    const char *names[] = {KV_ENGINE_LOG_FILE, "meta.json"};
    char path[600];
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- ciphers ----------------------------------------------------------------------------- */

enum cipher { AES_GCM, CHACHAPOLY };

static double seal_rate(enum cipher c, size_t len, double seconds)
{
    static unsigned char key[32] = {1}, nonce[12], aad[20], in[4096], out[4096], tag[16];
    mbedtls_gcm_context gcm;
    mbedtls_chachapoly_context cp;
    mbedtls_gcm_init(&gcm);
    mbedtls_chachapoly_init(&cp);
    mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256);
    mbedtls_chachapoly_setkey(&cp, key);
    long n = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 256; i++, n++) {
            nonce[0] = (unsigned char)n;
            if (c == AES_GCM)
                mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, len, nonce, 12, aad,
                                          sizeof aad, in, out, 16, tag);
            else
                mbedtls_chachapoly_encrypt_and_tag(&cp, len, nonce, aad, sizeof aad, in, out, tag);
        }
        t = now() - t0;
    } while (t < seconds);
    mbedtls_gcm_free(&gcm);
    mbedtls_chachapoly_free(&cp);
    return (double)n / t;
}

static void bench_ciphers(double seconds)
{
    printf("sealing, one core (records/s, MB/s):\n");
    size_t sizes[] = {100, 4096};
    for (size_t i = 0; i < 2; i++) {
        double g = seal_rate(AES_GCM, sizes[i], seconds);
        double c = seal_rate(CHACHAPOLY, sizes[i], seconds);
        printf("  %4zu B  AES-256-GCM %9.0f/s %7.1f MB/s   ChaCha20-Poly1305 %9.0f/s %7.1f MB/s"
               "   GCM/ChaCha %.2fx\n", sizes[i], g, g * (double)sizes[i] / 1e6, c,
               c * (double)sizes[i] / 1e6, g / c);
    }
}

/* ---- engine ------------------------------------------------------------------------------ */

struct run {
    struct kv_engine *e;
    struct event_base *base;
    double deadline;
    long acked;
    long next;
    int inflight;
    char val[100];
};

struct writer {
    struct run *r;
    char key[32];
};

static void submit(struct writer *w);

static void on_done(int status, const char *err, void *arg)
{
    struct writer *w = arg;
    if (status != 0) {
        fprintf(stderr, "kvbench: write failed: %s\n", err);
        exit(1);
    }
    w->r->acked++;
    w->r->inflight--;
    if (now() < w->r->deadline)
        submit(w);
    else if (w->r->inflight == 0)
        event_base_loopbreak(w->r->base);
}

static void submit(struct writer *w)
{
    snprintf(w->key, sizeof w->key, "key%012ld", w->r->next++);
    struct kv_op op = {KV_OP_PUT, w->key, strlen(w->key), w->r->val, sizeof w->r->val};
    char err[256];
    if (kv_engine_write(w->r->e, &op, 1, on_done, w, err, sizeof err) != 0) {
        fprintf(stderr, "kvbench: %s\n", err);
        exit(1);
    }
    w->r->inflight++;
}

static void engine_run(const char *top, const struct cipher_keys *keys, int writers,
                       double seconds)
{
    char dir[512], err[600];
    snprintf(dir, sizeof dir, "%s/kvbench-XXXXXX", top);
    if (!mkdtemp(dir)) {
        perror("kvbench: mkdtemp");
        exit(1);
    }
    struct run r = {.base = event_base_new()};
    memset(r.val, 'v', sizeof r.val);
    if (!r.base || kv_engine_open(r.base, dir, keys, &r.e, err, sizeof err) != 0) {
        fprintf(stderr, "kvbench: %s\n", err);
        exit(1);
    }
    struct writer *w = calloc((size_t)writers, sizeof *w);
    double t0 = now();
    r.deadline = t0 + seconds;
    for (int i = 0; i < writers; i++) {
        w[i].r = &r;
        submit(&w[i]);
    }
    event_base_dispatch(r.base);
    double t = now() - t0;
    struct kv_engine_stats st;
    kv_engine_stats(r.e, &st);
    printf("  %-9s %2d writer%s %9.0f puts/s  (%ld puts, %.1f per sync)\n",
           keys ? "encrypted" : "plaintext", writers, writers == 1 ? " " : "s",
           (double)r.acked / t, r.acked, (double)st.writes / (double)(st.syncs ? st.syncs : 1));
    kv_engine_close(r.e);
    event_base_free(r.base);
    free(w);
    remove_dir(dir);
}

int main(int argc, char **argv)
{
    const char *top = "/var/tmp";
    double seconds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dir") == 0)
            top = argv[i + 1];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
    }
    bench_ciphers(seconds / 3);
    char hex[65], err[256];
    uint8_t tok[32];
    size_t n;
    struct cipher_keys keys;
    if (cipherfile_random_hex(32, hex, sizeof hex, err, sizeof err) != 0 ||
        cipherfile_parse(hex, 64, tok, &n, err, sizeof err) != 0 ||
        cipherfile_derive(tok, n, &keys, err, sizeof err) != 0) {
        fprintf(stderr, "kvbench: %s\n", err);
        return 1;
    }
    printf("engine puts, 100-byte values, each durable (fdatasync) before it counts, in %s:\n",
           top);
    int writers[] = {1, 64};
    for (int i = 0; i < 2; i++) {
        engine_run(top, NULL, writers[i], seconds);
        engine_run(top, &keys, writers[i], seconds);
    }
    cipherfile_keys_clear(&keys);
    return 0;
}
