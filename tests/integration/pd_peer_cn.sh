#!/usr/bin/env bash
# PD peers check each other's CN too: a member whose cert-allowed-cn leaves out PD-Server
# refuses its peers, and they log that it refused their certificate's Common Name.
. "$(dirname "$0")/lib.sh"

make_pki || { fail "make certificates"; finish; }
pd_config "$WORK/open.toml" '["PD-Control", "PD-Server"]'
pd_config "$WORK/strict.toml" '["PD-Control"]'
A_C=$(free_port); A_P=$(free_port); B_C=$(free_port); B_P=$(free_port)
IC="a=https://127.0.0.1:$A_P,b=https://127.0.0.1:$B_P"
start_pd a "$A_C" "$A_P" "$WORK/open.toml" --initial-cluster "$IC" || fail "a starts"
start_pd b "$B_C" "$B_P" "$WORK/strict.toml" --initial-cluster "$IC" || fail "b starts"
sleep 3
# b may still win an election (it can dial a, a allows PD-Server), but a can never reach b:
# either there is no leader, or a's forwarded requests are refused. Both name the cause.
WHY="the server refused our certificate: its Common Name is not in the server's allow-list \\(TLS alert access_denied\\)"
REFUSED="127\\.0\\.0\\.1:$B_P: $WHY"
check_fails "a cannot serve TSO while b refuses its certificate" \
    "^\\[503\\] (cannot reach the PD leader: $REFUSED|no PD leader elected yet: member a reaches 0 of 1 other members \\(a majority of 2 is needed\\))\$" \
    pdctl "https://127.0.0.1:$A_C" pd-control tso
check_output "a's log says b refused its certificate's Common Name" \
    "\"direction\":\"out\",\"peer\":\"127\\.0\\.0\\.1:$B_P\",\"peer_cn\":\"PD-Server\",\"result\":\"fail\",\"reason\":\"$WHY\"" \
    cat "$WORK/a.log"

# The same two members with PD-Server allowed on both sides elect a leader.
stop_pid "$LAST_PID"
start_pd b "$B_C" "$B_P" "$WORK/open.toml" --initial-cluster "$IC" || fail "b restarts"
ok=""
for i in $(seq 60); do
    pdctl "https://127.0.0.1:$A_C" pd-control tso >/dev/null 2>&1 && { ok=1; break; }
    sleep 0.1
done
check "with PD-Server allowed, the two members serve TSO" test -n "$ok"

finish
