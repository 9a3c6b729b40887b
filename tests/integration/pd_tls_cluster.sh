#!/usr/bin/env bash
# Three PD members over mutual TLS: one leader, followers forward writes, a new leader takes
# over when the old one dies, TSO never goes back, state survives.
. "$(dirname "$0")/lib.sh"

make_pki || { fail "make certificates"; finish; }
# The members dial each other with PD-Server's cert, so the list must allow it.
pd_config "$WORK/pd.toml" '["TiKV-Server", "TiDB-Server", "PD-Control", "PD-Server"]'
declare -A CPORT PPORT
IC=""
for n in pd1 pd2 pd3; do
    CPORT[$n]=$(free_port)
    PPORT[$n]=$(free_port)
    IC="$IC${IC:+,}$n=https://127.0.0.1:${PPORT[$n]}"
done
declare -A PID
for n in pd1 pd2 pd3; do
    start_pd "$n" "${CPORT[$n]}" "${PPORT[$n]}" "$WORK/pd.toml" --initial-cluster "$IC" ||
        fail "$n starts"
    PID[$n]=$LAST_PID
done

leader_of() { # prints the leader name as member $1 sees it
    pdctl "https://127.0.0.1:${CPORT[$1]}" pd-control member leader show 2>/dev/null |
        sed -n 's/.*"name": "\(.*\)".*/\1/p'
}
# wait_leader [-not NAME] MEMBER...: until the members all name the same leader (other than
# NAME, a member just stopped that the others may still name for a moment); prints it.
wait_leader() {
    local not="" i l first
    if [ "$1" = -not ]; then not=$2; shift 2; fi
    for i in $(seq 100); do
        first=$(leader_of "$1")
        [ "$first" = "$not" ] && first=""
        if [ -n "$first" ]; then
            for l in "$@"; do [ "$(leader_of "$l")" = "$first" ] || first=""; done
        fi
        [ -n "$first" ] && { echo "$first"; return 0; }
        sleep 0.1
    done
    return 1
}

LEADER=$(wait_leader pd1 pd2 pd3)
check "the three members agree on one leader" test -n "$LEADER"
FOLLOWER=pd1
[ "$LEADER" = pd1 ] && FOLLOWER=pd2
check_output "a follower forwards a store registration to the leader" '^  "store_id": 1,$' \
    curl -sS --fail --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" -d '{"address":"127.0.0.1:20160"}' \
    "https://127.0.0.1:${CPORT[$FOLLOWER]}/pd/api/v1/tikv/register"
pdctl "https://127.0.0.1:${CPORT[$FOLLOWER]}" pd-control health >"$WORK/health.json" 2>&1
check "health (asked of a follower) shows the three members healthy" \
    bash -c "[ \$(grep -c '\"health\": true' $WORK/health.json) -eq 3 ]"
T1=$(pdctl "https://127.0.0.1:${CPORT[$FOLLOWER]}" pd-control tso)
check "TSO through a follower is a timestamp" bash -c "[[ '$T1' =~ ^[0-9]{15,}\$ ]]"

stop_pid "${PID[$LEADER]}"
REST=()
for n in pd1 pd2 pd3; do [ "$n" != "$LEADER" ] && REST+=("$n"); done
NEW=$(wait_leader -not "$LEADER" "${REST[@]}")
check "the two others elect a new leader" test -n "$NEW"
T2=""
for i in $(seq 50); do
    T2=$(pdctl "https://127.0.0.1:${CPORT[${REST[0]}]}" pd-control tso 2>/dev/null) && break
    sleep 0.1
done
check "TSO from the new leader is above the old leader's" test "${T2:-0}" -gt "$T1"
sleep 2.5 # longer than the leader's liveness window
pdctl "https://127.0.0.1:${CPORT[${REST[0]}]}" pd-control health >"$WORK/health2.json" 2>&1
check "health shows the stopped member unhealthy, the two others healthy" \
    bash -c "[ \$(grep -c '\"health\": true' $WORK/health2.json) -eq 2 ] &&
             [ \$(grep -c '\"health\": false' $WORK/health2.json) -eq 1 ]"
check_output "the new leader has the store" '^    "address": "127\.0\.0\.1:20160",$' \
    pdctl "https://127.0.0.1:${CPORT[${REST[0]}]}" pd-control store 1

stop_pid "${PID[$NEW]}"
LAST=${REST[0]}
[ "$LAST" = "$NEW" ] && LAST=${REST[1]}
sleep 3
check_fails "one member of three does not serve writes" \
    "^\\[503\\] no PD leader elected yet: member $LAST reaches 0 of 2 other members \\(a majority of 2 is needed\\)\$" \
    pdctl "https://127.0.0.1:${CPORT[$LAST]}" pd-control tso

# Restarted, the first member finds its state and the others again.
start_pd "$LEADER" "${CPORT[$LEADER]}" "${PPORT[$LEADER]}" "$WORK/pd.toml" --initial-cluster "$IC" ||
    fail "$LEADER restarts"
AGAIN=$(wait_leader "$LEADER" "$LAST")
check "two members of three elect a leader again" test -n "$AGAIN"
check_output "the store is still there" '^    "address": "127\.0\.0\.1:20160",$' \
    pdctl "https://127.0.0.1:${CPORT[$LAST]}" pd-control store 1

finish
