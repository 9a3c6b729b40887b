/* util.h — what the tisim-bench modules share: certificates, loopback sockets, clocks,
 * memory figures, and the server child process with its plan and result.
 *
 * Contract:
 * - Every server runs in a child process (bench_spawn), so the CPU time and memory it reports
 *   are its own: CLOCK_PROCESS_CPUTIME_ID (user + system) and VmRSS / malloc in-use bytes.
 * - A server follows a plan: `warm` connections first (not measured), then `full` connections
 *   closed by the client after one byte each way, then `resumed` ones, then `hold` connections
 *   kept open. It counts a connection when the client closes it (so teardown is measured)
 *   and, for held ones, when their byte has arrived. Its figures come back in one
 *   struct bench_result through a pipe.
 * - Under valgrind --tool=callgrind --instr-atstart=no, a server instruments only the full and
 *   resumed phases and dumps one profile per phase ("full", "resumed").
 * Figures only: nothing here asserts a duration.
 */
#ifndef TISIM_BENCH_UTIL_H
#define TISIM_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct bench_certs {
    char dir[64];
    char ca[96], server_cert[96], server_key[96], client_cert[96], client_key[96];
};

struct bench_plan {
    int warm, full, resumed, hold;
    const char *log_path; /* transport server: its log file */
    bool log_warn_only;   /* false: INFO, every handshake logged (a daemon's default) */
};

struct bench_result {
    int failed;                       /* connections whose handshake or byte failed */
    int full_seen, resumed_seen;      /* handshakes the server saw as full / resumed */
    double cpu_full_ms, cpu_resumed_ms; /* server CPU over the full / resumed phase */
    double sys_full_ms, sys_resumed_ms; /* the kernel's part of it (getrusage, tick-sampled) */
    long csw_full, csw_resumed;         /* times the server slept (voluntary context switches) */
    long rss_before_kb, rss_after_kb; /* hold phase: before the first held connection, after all */
    long heap_before, heap_after;     /* malloc in-use bytes at the same two points */
    char suite[64];                   /* negotiated by the last handshake */
    char error[320];                  /* first failure, "" if none */
};

int bench_certs_make(struct bench_certs *c, bool rsa, char *err, size_t errlen);
void bench_certs_remove(const struct bench_certs *c);
double bench_now_ms(void);     /* CLOCK_MONOTONIC */
double bench_cpu_ms(void);     /* CLOCK_PROCESS_CPUTIME_ID */
int bench_listen(int *port);   /* loopback TCP listener on a free port, -1 on failure */
void bench_mem(long *rss_kb, long *heap_bytes); /* VmRSS, malloc in-use bytes */
void bench_raise_nofile(void);
void bench_callgrind_start(void);
void bench_callgrind_dump(const char *phase);

/* A server's bookkeeping when i connections of plan p are done (call it with 0 first, then
 * after each; for a held connection, i counts all before it plus the held ones): marks the
 * start (CPU clock, callgrind instrumentation) and end of the full and resumed phases, and
 * samples memory before and after the held connections. */
struct bench_mark {
    double cpu, sys;
    long csw;
};
void bench_phase(int i, const struct bench_plan *p, struct bench_result *r, struct bench_mark *m);

/* A server process: fn runs in the child with the listening socket and writes its result to
 * the pipe when done. bench_wait collects it (-1 when the child died without a result). */
typedef void (*bench_server_fn)(int lfd, const struct bench_certs *c,
                                const struct bench_plan *p, struct bench_result *r);
struct bench_child {
    pid_t pid;
    int result_fd;
    int port;
};
int bench_spawn(struct bench_child *ch, bench_server_fn fn, const struct bench_certs *c,
                const struct bench_plan *p);
int bench_wait(struct bench_child *ch, struct bench_result *r);
/* The client failed: end the server without waiting for its result. */
void bench_stop(struct bench_child *ch);

#endif
