#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "certgen.h"

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define BENCH_HAVE_CALLGRIND 1
#endif
#endif

static int path_in(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int bench_certs_make(struct bench_certs *c, bool rsa, char *err, size_t errlen)
{
    snprintf(c->dir, sizeof c->dir, "/tmp/tisim-bench-XXXXXX");
    if (!mkdtemp(c->dir)) {
        snprintf(err, errlen, "cannot create a temporary directory: %s", strerror(errno));
        return -1;
    }
    struct certgen_pki_opts po = {.key_type = rsa ? CERTGEN_RSA_2048 : CERTGEN_EC_P256};
    if (certgen_pki(c->dir, &po, err, errlen) != 0)
        return -1;
    if (path_in(c->ca, sizeof c->ca, c->dir, "ca.pem") ||
        path_in(c->server_cert, sizeof c->server_cert, c->dir, "pd-server.pem") ||
        path_in(c->server_key, sizeof c->server_key, c->dir, "pd-server-key.pem") ||
        path_in(c->client_cert, sizeof c->client_cert, c->dir, "tidb-server.pem") ||
        path_in(c->client_key, sizeof c->client_key, c->dir, "tidb-server-key.pem")) {
        snprintf(err, errlen, "certificate path too long under %s", c->dir);
        return -1;
    }
    return 0;
}

void bench_certs_remove(const struct bench_certs *c)
{
    static const char *const names[] = {"ca.pem", "ca-key.pem", "pd-server.pem",
        "pd-server-key.pem", "tikv-server.pem", "tikv-server-key.pem", "tidb-server.pem",
        "tidb-server-key.pem", "client.pem", "client-key.pem", "server.log"};
    char p[128];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (path_in(p, sizeof p, c->dir, names[i]) == 0)
            unlink(p);
    if (rmdir(c->dir) != 0)
        fprintf(stderr, "tisim-bench: could not remove %s: %s\n", c->dir, strerror(errno));
}

static double clock_ms(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

double bench_now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

double bench_cpu_ms(void)
{
    return clock_ms(CLOCK_PROCESS_CPUTIME_ID);
}

static void mark_now(struct bench_mark *m)
{
    struct rusage ru = {0};
    getrusage(RUSAGE_SELF, &ru);
    m->cpu = bench_cpu_ms();
    m->sys = (double)ru.ru_stime.tv_sec * 1e3 + (double)ru.ru_stime.tv_usec / 1e3;
    m->csw = ru.ru_nvcsw;
}

int bench_listen(int *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

void bench_mem(long *rss_kb, long *heap_bytes)
{
    char line[128];
    *rss_kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", rss_kb) == 1)
            break;
    if (f)
        fclose(f);
    struct mallinfo2 mi = mallinfo2();
    *heap_bytes = (long)(mi.uordblks + mi.hblkhd);
}

void bench_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            fprintf(stderr, "tisim-bench: cannot raise the open-file limit: %s\n",
                    strerror(errno));
    }
}

void bench_callgrind_start(void)
{
#ifdef BENCH_HAVE_CALLGRIND
    CALLGRIND_ZERO_STATS;
    CALLGRIND_START_INSTRUMENTATION;
#endif
}

void bench_callgrind_dump(const char *phase)
{
#ifdef BENCH_HAVE_CALLGRIND
    CALLGRIND_DUMP_STATS_AT(phase);
#else
    (void)phase;
#endif
}

void bench_phase(int i, const struct bench_plan *p, struct bench_result *r, struct bench_mark *m)
{
    int full_end = p->warm + p->full, resumed_end = full_end + p->resumed;
    struct bench_mark now;
    if (i == p->warm) {
        bench_callgrind_start();
        mark_now(m);
    }
    if (i == full_end && p->full) {
        bench_callgrind_dump("full");
        mark_now(&now);
        r->cpu_full_ms = now.cpu - m->cpu;
        r->sys_full_ms = now.sys - m->sys;
        r->csw_full = now.csw - m->csw;
        *m = now;
    }
    if (i == resumed_end && p->resumed) {
        bench_callgrind_dump("resumed");
        mark_now(&now);
        r->cpu_resumed_ms = now.cpu - m->cpu;
        r->sys_resumed_ms = now.sys - m->sys;
        r->csw_resumed = now.csw - m->csw;
    }
    if (i == resumed_end && p->hold)
        bench_mem(&r->rss_before_kb, &r->heap_before);
    if (i == resumed_end + p->hold && p->hold)
        bench_mem(&r->rss_after_kb, &r->heap_after);
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

int bench_spawn(struct bench_child *ch, bench_server_fn fn, const struct bench_certs *c,
                const struct bench_plan *p)
{
    int fds[2];
    int lfd = bench_listen(&ch->port);
    if (lfd < 0 || pipe(fds) != 0) {
        fprintf(stderr, "tisim-bench: cannot listen on loopback: %s\n", strerror(errno));
        if (lfd >= 0)
            close(lfd);
        return -1;
    }
    fflush(NULL);
    ch->pid = fork();
    if (ch->pid == 0) {
        struct bench_result r = {0};
        close(fds[0]);
        fn(lfd, c, p, &r);
        _exit(write_all(fds[1], &r, sizeof r) == 0 ? 0 : 1);
    }
    close(lfd);
    close(fds[1]);
    ch->result_fd = fds[0];
    if (ch->pid < 0) {
        fprintf(stderr, "tisim-bench: fork: %s\n", strerror(errno));
        close(fds[0]);
        return -1;
    }
    return 0;
}

int bench_wait(struct bench_child *ch, struct bench_result *r)
{
    size_t got = 0;
    while (got < sizeof *r) {
        ssize_t k = read(ch->result_fd, (char *)r + got, sizeof *r - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(ch->result_fd);
    int status = 0;
    waitpid(ch->pid, &status, 0);
    if (got == sizeof *r)
        return 0;
    fprintf(stderr, "tisim-bench: the server process ended without a result (status %d)\n",
            status);
    return -1;
}

void bench_stop(struct bench_child *ch)
{
    kill(ch->pid, SIGTERM);
    close(ch->result_fd);
    waitpid(ch->pid, NULL, 0);
}
