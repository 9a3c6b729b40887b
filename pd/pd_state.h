/* pd_state.h — PD's cluster state: stores, regions, id allocator and the TSO high-water,
 * kept as one JSON document and persisted atomically in the data dir.
 *
 * Contract:
 * - pd_state_open() loads DATA_DIR/state.json (creating the dir 0700 and an empty state when
 *   missing); a corrupt file is an error naming it, never silently replaced. Every field is
 *   checked at load (pd_state_check_doc: types and ranges, e.g. tso_hw from 0 to
 *   PD_TSO_MAX_PHYSICAL, next_id >= 1); the error names the file and the first bad field.
 * - Every mutation bumps (version, version_term) and is written through pd_state_save():
 *   temp file, fsync, rename, fsync of the dir — a crash leaves the old or the new file.
 * - Followers replace their state wholesale with the leader's (pd_state_replace) when the
 *   leader's (version_term, version) is newer; the leader's document is checked as a file
 *   is, and the TSO high-water never goes down (the higher of the two is kept).
 * - Store input: addresses are host:port (at most PD_ADDRESS_MAX bytes, port 1-65535);
 *   heartbeat counters are non-negative integers. Errors are 400 naming the field.
 * - Store rules: a store address registers once and keeps its id across restarts; the
 *   cluster's storage-encryption state is set by the first store and every later store must
 *   match it.
 * - Region rules: one region, id PD_REGION_ID, over the whole key space ("" to ""). It is
 *   created when the first store registers, with peers ({"id": a fresh id, "store_id"}) the
 *   first up to PD_REGION_MAX_PEERS stores that are Up; a store that registers or heartbeats
 *   later while there are fewer peers is added and epoch.conf_ver bumps. Never more peers.
 *   A leader report (heartbeat "leader_of" with "term") from a peer is recorded as the
 *   region's "leader" (the peer object) and "leader_term" when its term is >= the recorded
 *   one; an older term is ignored (a stale leader). At load the region is checked field by
 *   field: id 1, string keys, epoch integers >= 1, 1-3 peers on distinct known stores, a
 *   leader that is one of the peers.
 */
#ifndef TISIM_PD_STATE_H
#define TISIM_PD_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pd_state {
    char *path;         /* DATA_DIR/state.json */
    json_t *doc;        /* {"version","version_term","next_id","tso_hw","encryption","stores":[],"regions":[]} */
    /* Raft-ish vote record, persisted with the state. */
    uint64_t term;
    char voted_for[64];
};

/* Longest store address (and version string) accepted. */
#define PD_ADDRESS_MAX 255
/* The one region and its replica count. */
#define PD_REGION_ID 1
#define PD_REGION_MAX_PEERS 3
/* A store is Up while its last heartbeat is more recent than this. */
#define PD_STORE_DISCONNECTED_MS (20 * 1000)
/* Most region ids one heartbeat's "leader_of" may list. */
#define PD_LEADER_OF_MAX 64

int pd_state_open(struct pd_state *s, const char *data_dir, char *err, size_t errlen);
int pd_state_save(struct pd_state *s, char *err, size_t errlen);
void pd_state_close(struct pd_state *s);

uint64_t pd_state_version(const struct pd_state *s);
uint64_t pd_state_version_term(const struct pd_state *s);
/* Marks a leader mutation made in term. Call pd_state_save afterwards. */
void pd_state_touch(struct pd_state *s, uint64_t term);
/* (term_a, ver_a) is newer than (term_b, ver_b). */
bool pd_state_newer(uint64_t term_a, uint64_t ver_a, uint64_t term_b, uint64_t ver_b);
/* 0 when doc (the "state" object) is well-formed, else -1 with why naming the first bad
 * field ("field \"state.tso_hw\" is -5, must be an integer from 0 to ..."). */
int pd_state_check_doc(const json_t *doc, char *why, size_t len);
/* Takes a copy of doc (the leader's); keeps the higher TSO high-water. */
int pd_state_replace(struct pd_state *s, const json_t *doc, char *err, size_t errlen);

uint64_t pd_state_tso_hw(const struct pd_state *s);
void pd_state_set_tso_hw(struct pd_state *s, uint64_t hw);
uint64_t pd_state_alloc_id(struct pd_state *s);

/* Registration of a TiKV store. Returns the store id, or 0 with err and *http_status set. */
uint64_t pd_state_register_store(struct pd_state *s, const char *address,
                                 const char *status_address, const char *version,
                                 bool encrypted, int64_t now_ms, int *http_status, char *err,
                                 size_t errlen);
/* 0 when address is host:port (at most PD_ADDRESS_MAX bytes, port 1-65535), else -1 with
 * err naming field. */
int pd_state_check_address(const char *field, const char *address, char *err, size_t errlen);
/* Heartbeat (body: the request object): updates stats, places the store in region 1 (see
 * the region rules), records the leader reports of "leader_of"/"term". -1 with err and
 * *http_status: 400 when a counter is not a non-negative integer, "leader_of" not an array of
 * region ids or "term" missing or bad (naming the field), 404 when the store is unknown.
 * On 0, note says which leader reports were ignored and why ("" when none). */
int pd_state_store_heartbeat(struct pd_state *s, uint64_t id, const json_t *body, int64_t now_ms,
                             int *http_status, char *err, size_t errlen, char *note,
                             size_t notelen);
/* The region object {"id","start_key",...} or NULL. Borrowed. */
json_t *pd_state_find_region(const struct pd_state *s, uint64_t id);
/* What a store learns of its region: {"id","start_key","end_key","peers":[{"id","store_id",
 * "address"}],"epoch":{"conf_ver","version"}} (a new reference), or NULL when store_id is not
 * one of region 1's peers. */
json_t *pd_state_region_for_store(const struct pd_state *s, uint64_t store_id);
/* store_id says it leads region_id in term: 0 when recorded, -1 with why when ignored (no such
 * region, not a peer, or a term older than the recorded one). */
int pd_state_report_leader(struct pd_state *s, uint64_t store_id, uint64_t region_id,
                           uint64_t term, char *why, size_t len);
/* The store object {"id","address",...} or NULL. Borrowed. */
json_t *pd_state_find_store(const struct pd_state *s, uint64_t id);

#endif
