#!/usr/bin/env bash
# PD + three TiKV stores, encrypted, with "TiKV-Server" in cert-allowed-cn: PD bootstraps
# region 1 over three replicas and the stores replicate it with Raft over mutual TLS. Then the
# faults: kill -9 of the leader under write load (a new leader among the survivors, every
# acknowledged key read back from them), the killed store restarted and catching up, and
# kill -9 of a follower under load with a restart.
. "$(dirname "$0")/lib.sh"

make_pki || { fail "make certificates"; finish; }
make_tikv_certs || { fail "make TiKV certificates and cipher files"; finish; }

PD_C=$(free_port); PD_P=$(free_port)
pd_config "$WORK/pd.toml" '["TiKV-Server", "PD-Control"]'
start_pd pd "$PD_C" "$PD_P" "$WORK/pd.toml" || fail "pd-server starts"
multi_tikv_config "$WORK/tikv.toml" "$WORK/cipher-file-256"
declare -a KV ST PID
start_store() { # start_store N: store N on its ports, its pid in PID[N]
    start_tikv "tikv$1" "$PD_C" "${KV[$1]}" "${ST[$1]}" "$WORK/tikv.toml"
    local rc=$?
    PID[$1]=$LAST_PID
    return $rc
}
for i in 1 2 3; do
    KV[$i]=$(free_port); ST[$i]=$(free_port)
    start_store "$i" || fail "tikv-server $i starts"
done

is_role() { tikv_status "${ST[$1]}" | grep -q "\"role\": \"$2\""; }
# the store that leads, among those given (prints its number)
leader_among() {
    local i
    for i in "$@"; do
        is_role "$i" leader && { echo "$i"; return 0; }
    done
    return 1
}
# the leader sees both other stores as voters
all_voters() {
    local l
    l=$(leader_among 1 2 3) || return 1
    [ "$(tikv_status "${ST[$l]}" | grep -c '"member": "voter"')" -eq 2 ]
}

check "the three stores form one Raft group (the leader has both others as voters)" \
    wait_until 30 all_voters
LEADER=$(leader_among 1 2 3)
FOLLOWERS=()
for i in 1 2 3; do [ "$i" != "$LEADER" ] && FOLLOWERS+=("$i"); done
check_output "pd-ctl region 1 lists three peers" '"store_id": [0-9]+.*"store_id": [0-9]+.*"store_id": [0-9]+' \
    bash -c "$(declare -f pdctl); BIN='$BIN' CERTS='$CERTS' pdctl https://127.0.0.1:$PD_C pd-control region 1 | sed -n '/\"peers\"/,/\\]/p' | tr -d '\n'"
leader_in_pd() {
    pdctl "https://127.0.0.1:$PD_C" pd-control region 1 |
        sed -n '/"leader"/,/}/p' | grep -q "\"address\": \"127.0.0.1:${KV[$LEADER]}\""
}
check "... and PD knows the leader from its heartbeats" wait_until 10 leader_in_pd

# --- writes through any store; reads see them; followers apply them
check_output "raw-put through a follower: tikv-ctl follows NOT_LEADER to the leader" '^success!$' \
    ctl "${KV[${FOLLOWERS[0]}]}" tikv-control raw-put user:1 'replicated-VALUE-51c2'
check_output "raw-get through the other follower finds it" '^replicated-VALUE-51c2$' \
    ctl "${KV[${FOLLOWERS[1]}]}" tikv-control raw-get user:1
applied_everywhere() { # every store holds $1 keys
    local i
    for i in 1 2 3; do [ "$(status_num "${ST[$i]}" key_count)" = "$1" ] || return 1; done
}
check "every store applied the write (key_count 1 on all three)" wait_until 10 applied_everywhere 1
for i in 1 2 3; do
    if grep -rqa 'replicated-VALUE-51c2' "$WORK/tikv$i.data"; then
        fail "store $i: the value is in its data dir's bytes (Raft log or engine unencrypted)"
    else
        pass "store $i: the value is nowhere in its data dir's bytes (Raft log and engine encrypted)"
    fi
done

# --- a writer that tries each store in turn; a key counts as acknowledged only on "success!"
writer() { # writer PREFIX: until $WORK/stop exists
    local i=0 s=1 try
    while [ ! -f "$WORK/stop" ]; do
        i=$((i + 1))
        for try in 1 2 3; do
            if ctl "${KV[$s]}" tikv-control raw-put "$1:$(printf %06d $i)" "v$i" 2>/dev/null |
                grep -q '^success!$'; then
                echo "$1:$(printf %06d $i)" >>"$WORK/acked.$1"
                break
            fi
            s=$((s % 3 + 1))
        done
    done
}
# missing_keys PREFIX STORE: how many acknowledged keys the store's leader cannot find
missing_keys() {
    ctl "${KV[$2]}" tikv-control raw-scan --from "$1:" --to "$1:~" --limit 10000 |
        cut -f1 | sort >"$WORK/found.$1"
    sort "$WORK/acked.$1" | comm -23 - "$WORK/found.$1" | wc -l
}

# --- kill -9 of the leader under write load
rm -f "$WORK/stop"; : >"$WORK/acked.a"
writer a &
WRITER=$!
sleep 2
kill -9 "${PID[$LEADER]}"
wait "${PID[$LEADER]}" 2>/dev/null
OLD=$LEADER
sleep 4
touch "$WORK/stop"
wait "$WRITER"
check "a new leader is elected among the two survivors" \
    wait_until 10 leader_among "${FOLLOWERS[@]}"
LEADER=$(leader_among "${FOLLOWERS[@]}")
n_acked=$(wc -l <"$WORK/acked.a")
missing=$(missing_keys a "$LEADER")
if [ "$n_acked" -gt 0 ] && [ "$missing" -eq 0 ]; then
    pass "leader kill -9 under writes: all $n_acked acknowledged keys read back from the new leader"
else
    fail "leader kill -9 under writes: $missing of $n_acked acknowledged keys missing"
fi
grep -q "leads, term" "$WORK/tikv$LEADER.log" &&
    pass "the new leader says so in its log" || fail "the new leader says so in its log"
check "writes go on with two of three stores" ctl "${KV[$LEADER]}" tikv-control raw-put after:kill yes

# --- the killed store comes back and catches up
start_store "$OLD" || fail "the killed store restarts"
caught_up() {
    [ "$(status_num "${ST[$OLD]}" key_count)" = "$(status_num "${ST[$LEADER]}" key_count)" ] &&
        is_role "$OLD" follower
}
check "the restarted store catches up (same key count as the leader, following it)" \
    wait_until 20 caught_up
check_output "... and a read through it reaches the leader" '^yes$' \
    ctl "${KV[$OLD]}" tikv-control raw-get after:kill

# --- kill -9 of a follower under write load, restart, every acknowledged key on all three
FOLLOWER=$OLD
rm -f "$WORK/stop"; : >"$WORK/acked.b"
writer b &
WRITER=$!
sleep 1.5
kill -9 "${PID[$FOLLOWER]}"
wait "${PID[$FOLLOWER]}" 2>/dev/null
sleep 1.5
start_store "$FOLLOWER" || fail "the killed follower restarts"
sleep 1
touch "$WORK/stop"
wait "$WRITER"
n_acked=$(wc -l <"$WORK/acked.b")
missing=$(missing_keys b "$(leader_among 1 2 3)")
if [ "$n_acked" -gt 0 ] && [ "$missing" -eq 0 ]; then
    pass "follower kill -9 under writes: all $n_acked acknowledged keys are there"
else
    fail "follower kill -9 under writes: $missing of $n_acked acknowledged keys missing"
fi
LEADER=$(leader_among 1 2 3)
same_count() {
    local want i
    want=$(status_num "${ST[$LEADER]}" key_count)
    for i in 1 2 3; do [ "$(status_num "${ST[$i]}" key_count)" = "$want" ] || return 1; done
}
check "the restarted follower holds every key too (same key count on all three)" \
    wait_until 20 same_count

finish
