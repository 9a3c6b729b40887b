#!/usr/bin/env bash
# Three stores configured with the TLS guide's TiKV [security] snippet verbatim: its
# cert-allowed-cn ("TiDB-Server", "PD-Server", "TiKV-Control", "RawKvClient1") lacks
# "TiKV-Server", the CN the stores dial each other with, so they refuse each other's Raft
# messages. The refusal must show: in each store's log, in /status, and the bootstrapped store
# keeps serving alone. Then the same data dirs restarted with "TiKV-Server" added: they
# replicate (the fix the README gives).
. "$(dirname "$0")/lib.sh"

make_pki || { fail "make certificates"; finish; }
make_tikv_certs || { fail "make TiKV certificates and cipher files"; finish; }

PD_C=$(free_port); PD_P=$(free_port)
pd_config "$WORK/pd.toml" '["TiKV-Server", "PD-Control"]'
start_pd pd "$PD_C" "$PD_P" "$WORK/pd.toml" || fail "pd-server starts"
tikv_config "$WORK/seed.toml" "$WORK/cipher-file-256"
multi_tikv_config "$WORK/fixed.toml" "$WORK/cipher-file-256"
declare -a KV ST
for i in 1 2 3; do
    KV[$i]=$(free_port); ST[$i]=$(free_port)
    start_tikv "tikv$i" "$PD_C" "${KV[$i]}" "${ST[$i]}" "$WORK/seed.toml" || fail "tikv-server $i starts"
done

is_role() { tikv_status "${ST[$1]}" | grep -q "\"role\": \"$2\""; }
leader_among() {
    local i
    for i in "$@"; do is_role "$i" leader && { echo "$i"; return 0; }; done
    return 1
}
check "one store bootstraps region 1 and leads it" wait_until 15 leader_among 1 2 3
L=$(leader_among 1 2 3)
OTHERS=()
for i in 1 2 3; do [ "$i" != "$L" ] && OTHERS+=("$i"); done

# the leader tries to add each other store; both refuse it
both_refused() { [ "$(tikv_status "${ST[$L]}" | grep -c '"link": "refused"')" -eq 2 ]; }
check "the leader's /status shows both replication links refused" wait_until 40 both_refused
check_output "... with TiKV's reason, naming the CN it presented" \
    '"reason": "Common name check fail, reason: x509_common_name from peer is TiKV-Server, cert_allowed_cn: ' \
    tikv_status "${ST[$L]}"
for i in "${OTHERS[@]}"; do
    check_output "store $i logs the refused peer and its CN" \
        'WARN.*refused raft peer 127\.0\.0\.1:[0-9]+: CN "TiKV-Server" not in cert-allowed-cn' \
        cat "$WORK/tikv$i.log"
    check_output "store $i's /status lists the refused caller's CN" \
        '"refused_callers": \[.*"cn": "TiKV-Server"' \
        bash -c "$(declare -f tikv_status); CERTS='$CERTS' tikv_status ${ST[$i]} | tr -d '\n'"
    check_output "the leader logs the link to store $i's address as refused, with its answer" \
        "WARN.*raft link to store [0-9]+ \\(127\\.0\\.0\\.1:${KV[$i]}\\) refused: Common name check fail" \
        cat "$WORK/tikv$L.log"
done
check_output "the bootstrapped store still serves clients alone" '^success!$' \
    ctl "${KV[$L]}" tikv-control raw-put seed:1 alone
check_fails "a refused store has no leader to send a client to, and says why" \
    'NOT_LEADER: this store has not joined region 1.s Raft group yet' \
    ctl "${KV[${OTHERS[0]}]}" tikv-control raw-get seed:1
for i in "${OTHERS[@]}"; do
    check_output "store $i holds no data (nothing replicated)" '"key_count": 0' tikv_status "${ST[$i]}"
done

# --- the fix: the same data dirs, "TiKV-Server" added to cert-allowed-cn
stop_all
start_pd pd "$PD_C" "$PD_P" "$WORK/pd.toml" || fail "pd-server restarts"
for i in 1 2 3; do
    start_tikv "tikv$i" "$PD_C" "${KV[$i]}" "${ST[$i]}" "$WORK/fixed.toml" ||
        fail "tikv-server $i restarts with the fixed list"
done
all_voters() {
    local l
    l=$(leader_among 1 2 3) || return 1
    [ "$(tikv_status "${ST[$l]}" | grep -c '"member": "voter"')" -eq 2 ]
}
check "with TiKV-Server listed, the three stores replicate (both others voters)" \
    wait_until 40 all_voters
holds_key() { [ "$(status_num "${ST[$1]}" key_count)" = 1 ]; }
for i in "${OTHERS[@]}"; do
    check "store $i caught up: it holds the key written while it was refused" \
        wait_until 10 holds_key "$i"
done
check_output "and a read through a former refuser reaches the leader" '^alone$' \
    ctl "${KV[${OTHERS[1]}]}" tikv-control raw-get seed:1

finish
