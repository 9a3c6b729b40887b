/* pd_api.h — PD's HTTP JSON API, shaped like real PD's /pd/api/v1.
 *
 * Contract:
 * - Read-only views: health, members, leader, stores, store/{id}, regions, region/id/{id},
 *   cluster, config, status. Writes: POST tso[?count=N], POST tikv/register,
 *   POST tikv/heartbeat (the endpoints TiKV uses; see docs in pd_api.c). Their replies carry
 *   "region" (id, keys, peers with addresses, epoch) when the store is one of region 1's
 *   peers; heartbeats may report "leader_of":[1] with "term". regions and region/id/{id}
 *   show real PD's RegionInfo (peers and leader with "role_name", plus each store address).
 * - members and leader are answered by any member; everything else by the leader, to which
 *   followers forward (pd_member_forward).
 * - Bad request bodies get 400 with a sentence; unknown ids 404; writes that break a cluster
 *   rule (storage encryption mismatch) 409.
 */
#ifndef TISIM_PD_API_H
#define TISIM_PD_API_H

#include "http.h"
#include "pd_config.h"
#include "pd_member.h"
#include "pd_state.h"

struct pd_api {
    const struct pd_config *cfg;
    struct pd_state *state;
    struct pd_member *member;
    int64_t start_time; /* unix seconds */
};

int pd_api_register(struct pd_api *api, struct http_server *http);

#endif
