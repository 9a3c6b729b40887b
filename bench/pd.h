/* pd.h — PD's TSO endpoint as a client sees it: POST /pd/api/v1/tso over CONNS kept-alive
 * mutual-TLS connections (the way components talk), then N/10 requests that each open a new
 * connection with a fresh TLS context (the way a one-shot client talks). Prints req/s and
 * latency percentiles; returns 1 when a request failed or the setup did. */
#ifndef TISIM_BENCH_PD_H
#define TISIM_BENCH_PD_H

struct tls_opts;
int bench_pd(const char *url, struct tls_opts *o, int n, int conns);

#endif
