#!/usr/bin/env bash
# Raft snapshots with real processes: PD + three encrypted TiKV stores. One follower is killed
# -9 and kept down while 20000 writes go through the leader (over 12000 Raft entries: past
# the snapshot threshold of 4096 entries several times), so the live stores take snapshots and
# compact their logs. The follower then comes back too far behind to catch up by log: the
# leader sends it a snapshot (over 4 MiB of data: in chunks), it says so in its log, and it
# ends with the leader's key count. Every key is read back through the leader; the leader,
# killed and restarted, loads its snapshot and the log after it.
. "$(dirname "$0")/lib.sh"

WRITES=20000
SNAPSHOT_ENTRIES=4096 # tikv/replica.c

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
leader_among() {
    local i
    for i in "$@"; do
        is_role "$i" leader && { echo "$i"; return 0; }
    done
    return 1
}
all_voters() {
    local l
    l=$(leader_among 1 2 3) || return 1
    [ "$(tikv_status "${ST[$l]}" | grep -c '"member": "voter"')" -eq 2 ]
}
check "the three stores form one Raft group" wait_until 30 all_voters
LEADER=$(leader_among 1 2 3)
FOLLOWERS=()
for i in 1 2 3; do [ "$i" != "$LEADER" ] && FOLLOWERS+=("$i"); done
DOWN=${FOLLOWERS[0]}
UP=${FOLLOWERS[1]}
check_output "a write before the follower goes down" '^success!$' \
    ctl "${KV[$LEADER]}" tikv-control raw-put before:down 'written-before'
applied_everywhere() {
    local i
    for i in 1 2 3; do [ "$(status_num "${ST[$i]}" key_count)" = "$1" ] || return 1; done
}
check "every store applied it" wait_until 10 applied_everywhere 1

# --- one follower down while the others go far past the snapshot threshold
kill -9 "${PID[$DOWN]}"
wait "${PID[$DOWN]}" 2>/dev/null
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
first_index=$(status_num "${ST[$LEADER]}" applied_index)
load_start=$SECONDS
"$BIN/tisim-kvload" --addr "127.0.0.1:${KV[$LEADER]}" --ca-path "$CERTS/ca.pem" \
    --cert-path "$CERTS/tikv-control.pem" --key-path "$CERTS/tikv-control-key.pem" \
    -c 1 -d 1 --ops put -n "$WRITES" --keys "$WRITES" --value-size 300 >"$WORK/kvload.out" 2>&1
load_rc=$?
echo "      $(cat "$WORK/kvload.out")"
[ "$load_rc" -eq 0 ] && pass "$WRITES writes acknowledged by the leader with one store down" ||
    fail "$WRITES writes acknowledged by the leader with one store down (kvload exit $load_rc)"
last_index=$(status_num "${ST[$LEADER]}" applied_index)
entries=$((last_index - first_index))
if [ "$entries" -gt $((3 * SNAPSHOT_ENTRIES)) ]; then
    pass "the writes took $entries Raft entries (over 3 x $SNAPSHOT_ENTRIES) in $((SECONDS - load_start)) s"
else
    fail "the writes took only $entries Raft entries (want over 3 x $SNAPSHOT_ENTRIES)"
fi
echo "      leader RSS after the load: $(rss_kb "${PID[$LEADER]}") kB"
snapshots_in() { grep -c 'raft: snapshot at index [0-9]* written' "$WORK/tikv$1.log"; }
n_snaps=$(snapshots_in "$LEADER")
[ "$n_snaps" -ge 3 ] && pass "the leader took $n_snaps snapshots and compacted its log" ||
    fail "the leader took $n_snaps snapshots (want 3 or more)"
[ "$(snapshots_in "$UP")" -ge 3 ] && pass "so did the live follower" ||
    fail "the live follower took $(snapshots_in "$UP") snapshots (want 3 or more)"

# --- the follower comes back: too far behind for the log, it gets a snapshot
back_start=$SECONDS
start_store "$DOWN" || fail "the follower restarts"
caught_up() {
    [ "$(status_num "${ST[$DOWN]}" key_count)" = "$((WRITES + 1))" ] && is_role "$DOWN" follower
}
check "the follower catches up: $((WRITES + 1)) keys, as the leader" wait_until 60 caught_up
echo "      caught up in $((SECONDS - back_start)) s after its restart"
check_output "its log says it installed a snapshot from the leader" \
    'installed a snapshot from the leader at index [0-9]+' grep -h 'installed a snapshot' "$WORK/tikv$DOWN.log"
check_output "... and that its engine caught up by snapshot" 'caught up by snapshot' \
    grep -h 'caught up by snapshot' "$WORK/tikv$DOWN.log"
check_output "the leader sent it in chunks (over 4 MiB)" \
    "sending snapshot at index [0-9]+ \([0-9]+ bytes\) to store [0-9]+ in chunks" \
    grep -h 'sending snapshot' "$WORK/tikv$LEADER.log"
same_applied() {
    [ "$(status_num "${ST[$DOWN]}" applied_index)" -ge "$last_index" ]
}
check "its Raft applied index reaches the leader's" wait_until 20 same_applied

# --- every key, through the leader; the caught-up store holds as many
scan_count() { # scan_count FROM TO: keys in [FROM, TO) through the leader
    ctl "${KV[$LEADER]}" tikv-control raw-scan --from "$1" --to "$2" --limit 10000 | wc -l
}
n1=$(scan_count key:000000000000 key:000000010000)
n2=$(scan_count key:000000010000 key:000000020000)
[ "$((n1 + n2))" -eq "$WRITES" ] && pass "all $WRITES written keys read back through the leader" ||
    fail "$((n1 + n2)) of $WRITES written keys read back through the leader"
check_output "the key written before the follower went down is there (asked through it)" \
    '^written-before$' ctl "${KV[$DOWN]}" tikv-control raw-get before:down
for i in 1 2 3; do
    [ "$(status_num "${ST[$i]}" key_count)" = "$((WRITES + 1))" ] &&
        pass "store $i holds $((WRITES + 1)) keys" || fail "store $i holds $(status_num "${ST[$i]}" key_count) keys"
done

# --- the leader restarts from a compacted log: its snapshot, then the entries after it
kill -9 "${PID[$LEADER]}"
wait "${PID[$LEADER]}" 2>/dev/null
OLD=$LEADER
check "a new leader among the other two" wait_until 10 leader_among "$DOWN" "$UP"
LEADER=$(leader_among "$DOWN" "$UP")
check_output "writes go on" '^success!$' ctl "${KV[$LEADER]}" tikv-control raw-put after:restart yes
start_store "$OLD" || fail "the old leader restarts"
back() { [ "$(status_num "${ST[$OLD]}" key_count)" = "$((WRITES + 2))" ]; }
check "it comes back with every key ($((WRITES + 2)))" wait_until 30 back
check_output "it loaded its snapshot at start" 'Raft snapshot' \
    grep -h 'Raft snapshot' "$WORK/tikv$OLD.log"

finish
