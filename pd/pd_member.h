/* pd_member.h — PD membership: leader election among the --initial-cluster members, state
 * replication from the leader, the TSO high-water quorum, and forwarding to the leader.
 *
 * Contract (a small Raft without a log: the replicated "log" is the whole state document):
 * - Members talk over HTTPS (mutual TLS, the member's own server cert as client cert) on the
 *   peer URL: POST /pd/peer/v1/vote and POST /pd/peer/v1/append (heartbeat + state). Only the
 *   peer role may call them: a client certificate with CN PD_PEER_CN or the CN of this
 *   member's own server certificate; any other CN (even one in cert-allowed-cn) gets 403
 *   with a JSON error naming the CN, and a log line.
 * - No message lowers a persisted term (a vote or append for a lower term changes nothing)
 *   or the persisted TSO high-water (pd_state_replace keeps the higher one).
 * - A member votes once per term, only for a candidate whose state is at least as new as its
 *   own; a candidate with votes from a majority leads. Terms and votes are persisted before
 *   answering. A leader that has not heard from a majority for an election timeout steps
 *   down, so at most one member serves writes while a majority is up.
 * - The leader sends heartbeats every 250 ms, carrying its state when the follower's copy is
 *   older; followers persist it. A write is answered only once a majority has persisted it,
 *   so an acknowledged store registration survives the loss of the leader. TSO timestamps are handed out only below a high-water that a
 *   majority has persisted, so a new leader never repeats one.
 * - Followers forward API requests (anything but health/members/leader) to the leader and
 *   relay its answer; with no leader they answer 503 naming how many members they reach.
 */
#ifndef TISIM_PD_MEMBER_H
#define TISIM_PD_MEMBER_H

#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "pd_config.h"
#include "pd_state.h"
#include "tls.h"

struct pd_member;

/* The CN of the PD members' certificates, as real PD's deployment uses. */
#define PD_PEER_CN "PD-Server"

/* Set on every request a member sends to another (RPCs and forwarded API calls). */
#define PD_FORWARDED_HEADER "X-Tisim-PD-Member"

struct pd_member *pd_member_new(struct event_base *base, const struct pd_config *cfg,
                                struct pd_state *state, struct tls_ctx *client_tls, char *err,
                                size_t errlen);
/* Answers every request it still holds with 503 "PD is stopping" (a request whose client left
 * is freed only by a reply), then frees. Call it before freeing the HTTP servers. */
void pd_member_free(struct pd_member *m);
/* Adds the peer RPC routes to the peer URL's server. */
int pd_member_serve_peers(struct pd_member *m, struct http_server *peer_http);
void pd_member_start(struct pd_member *m);

bool pd_member_is_leader(const struct pd_member *m);
/* A leader is known (this member or another). */
bool pd_member_leader_known(const struct pd_member *m);
/* The leader persists a local mutation, replicates it, and answers req with reply (taken)
 * once a majority of members has persisted it; 503 when that does not happen in time or
 * leadership is lost first, 500 when the local write fails. */
void pd_member_commit_reply(struct pd_member *m, struct evhttp_request *req, json_t *reply);
/* Answers req with count timestamps: {"tso":LAST,"physical":MS,"logical":L,"count":N}. When
 * the current millisecond's logical part is used up, req waits (on a timer, never blocking
 * the loop) until the clock moves, behind the requests already waiting; 503 when this member
 * is not the leader, the TSO window is not persisted yet, or the clock is far behind. */
void pd_member_tso_reply(struct pd_member *m, struct evhttp_request *req, uint32_t count);
void pd_member_forward(struct pd_member *m, struct evhttp_request *req);

uint64_t pd_member_cluster_id(const struct pd_member *m);
json_t *pd_member_members_json(const struct pd_member *m);
json_t *pd_member_health_json(const struct pd_member *m);
json_t *pd_member_leader_json(const struct pd_member *m); /* JSON null without a leader */

#endif
