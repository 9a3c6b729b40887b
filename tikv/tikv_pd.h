/* tikv_pd.h — a TiKV store's link to PD: registration, then heartbeats, over HTTPS.
 *
 * Contract:
 * - tikv_pd_new takes PD's endpoints (a comma-separated list of URLs, as --pd after
 *   tikv_config normalised it: "https://127.0.0.1:2379,https://127.0.0.1:2381") and the
 *   store's client tls ctx (its own server cert, so PD's cert-allowed-cn decides; NULL for
 *   plain http). Connections are kept alive and resume their TLS sessions; nothing opens a
 *   connection per heartbeat.
 * - tikv_pd_start registers the store (POST /pd/api/v1/tikv/register with its address,
 *   status address, version and encryption state). While no PD answers, it tries the next
 *   endpoint every TIKV_PD_RETRY_MS, logging a WARN the first time and every tenth retry.
 *   Once registered, on_registered runs with the store id, and a heartbeat (POST
 *   /pd/api/v1/tikv/heartbeat with the counters the stats callback fills) goes every
 *   TIKV_PD_HEARTBEAT_MS; the first one, and any after stats that set hurry, go after
 *   TIKV_PD_HEARTBEAT_FAST_MS instead. A heartbeat PD does not know (404: PD lost its state)
 *   registers again.
 * - A refusal is final: an answer 400-499 to the registration (409: this store's encryption
 *   state differs from the cluster's, as TiDB documents: all TiKV instances or none) calls
 *   on_refused with PD's message; the daemon stops on it.
 * - Region: when a register or heartbeat reply carries PD's "region" object (this store is one
 *   of the region's peers; docs/replication.md section 6), on_region runs with it parsed.
 *   A malformed region (not 1 to TIKV_PD_MAX_PEERS peers with ids and host:port addresses)
 *   is logged once and ignored. A heartbeat carries "leader_of":[region],"term":T when the
 *   stats callback sets leader_of (this store leads that region in Raft term T).
 * - tikv_pd_store_id is 0 until registered. Not thread-safe (one event loop).
 */
#ifndef TISIM_TIKV_PD_H
#define TISIM_TIKV_PD_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls.h"

#define TIKV_PD_RETRY_MS 1000
#define TIKV_PD_HEARTBEAT_MS 2000
#define TIKV_PD_HEARTBEAT_FAST_MS 200 /* while the stats callback says "hurry" */

struct tikv_pd_store {
    const char *address;        /* "127.0.0.1:20160", as clients reach the KV port */
    const char *status_address; /* "127.0.0.1:20180" */
    const char *version;
    bool encrypted;
};

#define TIKV_PD_MAX_PEERS 3
#define TIKV_PD_ADDR_MAX 255

struct tikv_pd_stats {
    uint64_t capacity, available, used_size, region_count;
    uint64_t leader_of; /* the region this store leads, 0: none */
    uint64_t term;      /* its Raft term, with leader_of */
    bool hurry;         /* next heartbeat after TIKV_PD_HEARTBEAT_FAST_MS (a group forming) */
};

struct tikv_pd_peer {
    uint64_t id;       /* PD's peer id */
    uint64_t store_id; /* the Raft server id */
    char address[TIKV_PD_ADDR_MAX + 1];
};

struct tikv_pd_region {
    uint64_t id;
    uint64_t conf_ver;
    size_t n_peers;
    struct tikv_pd_peer peers[TIKV_PD_MAX_PEERS];
};

struct tikv_pd_callbacks {
    void (*on_registered)(uint64_t store_id, void *arg);
    void (*on_refused)(const char *why, void *arg);
    void (*stats)(struct tikv_pd_stats *out, void *arg); /* may be NULL: zeros */
    void (*on_region)(const struct tikv_pd_region *region, void *arg); /* may be NULL */
    void *arg;
};

struct tikv_pd;

/* NULL with err (a bad endpoint list names the bad entry). The strings of store are copied. */
struct tikv_pd *tikv_pd_new(struct event_base *base, const char *endpoints, struct tls_ctx *tls,
                            const struct tikv_pd_store *store,
                            const struct tikv_pd_callbacks *cb, char *err, size_t errlen);
void tikv_pd_start(struct tikv_pd *p);
uint64_t tikv_pd_store_id(const struct tikv_pd *p);
/* The endpoint that answered last (for /status), "" before any did. */
const char *tikv_pd_endpoint(const struct tikv_pd *p);
void tikv_pd_free(struct tikv_pd *p);

#endif
