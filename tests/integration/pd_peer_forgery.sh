#!/usr/bin/env bash
# Peer messages (vote, append) are for PD members only: a client whose CN is in
# cert-allowed-cn (PD-Control) but is not a PD member gets 403 naming its CN, and the leader,
# its term, its stores and its TSO are unchanged. The same requests with the PD-Server cert
# are accepted in the same setup; a stale append (lower term) from a member changes nothing.
# Members whose certificates carry another CN (PD-Member) accept each other by that CN.
. "$(dirname "$0")/lib.sh"

make_pki || { fail "make certificates"; finish; }
CP=$(free_port)
PP=$(free_port)
URL=https://127.0.0.1:$CP
pd_config "$WORK/pd.toml" '["PD-Control", "PD-Server"]'
start_pd pd1 "$CP" "$PP" "$WORK/pd.toml" || { fail "pd-server starts"; finish; }

# peer_post CERT PATH BODY: POST to the peer port with CERTS/<CERT>.pem; prints the body, then
# a last line "HTTP <status>".
peer_post() {
    curl -sS --cacert "$CERTS/ca.pem" --cert "$CERTS/$1.pem" --key "$CERTS/$1-key.pem" \
        -w '\nHTTP %{http_code}\n' -d "$3" "https://127.0.0.1:$PP$2"
}
term_on_disk() { sed -n 's/^ "term": \([0-9]*\),$/\1/p' "$WORK/pd1.data/state.json"; }
wait_leader() {
    local i
    for i in $(seq 100); do
        pdctl "$URL" pd-control member leader show 2>/dev/null | grep -q '"name": "pd1"' && return 0
        sleep 0.1
    done
    return 1
}

check "pd1 leads" wait_leader
check_output "a store registers" '"store_id": 1' \
    curl -sS --fail --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" -d '{"address":"127.0.0.1:20160"}' \
    "$URL/pd/api/v1/tikv/register"
T1=$(pdctl "$URL" pd-control tso)
TERM1=$(term_on_disk)
check "the term is on disk" test -n "$TERM1"

VOTE='{"term":1000000,"candidate":"pd1","client_url":"https://127.0.0.1:1","state_term":999999,"state_version":999999}'
APPEND='{"term":1000000,"leader":"pd1","client_url":"https://127.0.0.1:1","state_term":999999,"state_version":999999,"state":{"version":999999,"version_term":999999,"next_id":1,"tso_hw":0,"encryption":"unknown","stores":[],"regions":[]}}'
FORBIDDEN='^"certificate CN \\"PD-Control\\" may not send PD peer requests: only PD members \(CN \\"PD-Server\\"\) may"$'
check_output "a forged vote with PD-Control's cert gets 403" "^HTTP 403$" \
    peer_post pd-control /pd/peer/v1/vote "$VOTE"
cp "$WORK/last.out" "$WORK/vote.out"
check_output "... naming the CN in a JSON error" "$FORBIDDEN" cat "$WORK/vote.out"
check_output "a forged append with PD-Control's cert gets 403" "^HTTP 403$" \
    peer_post pd-control /pd/peer/v1/append "$APPEND"
cp "$WORK/last.out" "$WORK/append.out"
check_output "... naming the CN in a JSON error" "$FORBIDDEN" cat "$WORK/append.out"
check_output "the refusal is logged with the CN" \
    'refused PD peer request /pd/peer/v1/append from 127\.0\.0\.1:[0-9]+: certificate CN "PD-Control" is not a PD member.s \(CN "PD-Server"\)$' \
    cat "$WORK/pd1.log"
check_output "pd1 is still the leader" '"name": "pd1"' pdctl "$URL" pd-control member leader show
check "the term on disk is unchanged" test "$(term_on_disk)" = "$TERM1"
check_output "the store is still there" '"address": "127\.0\.0\.1:20160"' \
    pdctl "$URL" pd-control store 1
T2=$(pdctl "$URL" pd-control tso)
check "TSO goes on increasing" test "$T2" -gt "$T1"
check "pd1 never stepped down" bash -c "! grep -q 'stepping down' '$WORK/pd1.log'"

# The good case: a member's certificate is heard (the higher term is taken).
check_output "the same vote with the PD-Server cert is accepted (200)" '^HTTP 200$' \
    peer_post pd-server /pd/peer/v1/vote "$VOTE"
cp "$WORK/last.out" "$WORK/vote-ok.out"
check_output "... and its higher term is taken" '"term": 1000000,' cat "$WORK/vote-ok.out"
check "pd1 leads again, in a later term" wait_leader
TERM2=$(term_on_disk)
check "the term on disk went up" test "${TERM2:-0}" -gt 1000000
# A stale append from a member (lower term, older high-water, no stores): answered, ignored.
check_output "a stale append with the PD-Server cert is answered but not applied" '"ok": false,' \
    peer_post pd-server /pd/peer/v1/append "$APPEND"
check "the term on disk did not go down" test "$(term_on_disk)" = "$TERM2"
check_output "the store is still there" '"address": "127\.0\.0\.1:20160"' \
    pdctl "$URL" pd-control store 1
T3=$(pdctl "$URL" pd-control tso)
check "TSO is above every earlier one" test "$T3" -gt "$T2"
stop_all

# Two members whose own certificates say CN PD-Member: they hear each other (the CN of their
# own certificate), and still refuse PD-Control.
"$BIN/tisim-certs" cert --ca-cert "$CERTS/ca.pem" --ca-key "$CERTS/ca-key.pem" --cn PD-Member \
    --san 127.0.0.1 --out-cert "$CERTS/pd-member.pem" --out-key "$CERTS/pd-member-key.pem" >/dev/null
cat >"$WORK/member.toml" <<TOML
[security]
cacert-path = "$CERTS/ca.pem"
cert-path = "$CERTS/pd-member.pem"
key-path = "$CERTS/pd-member-key.pem"
cert-allowed-cn = ["PD-Control", "PD-Member"]
TOML
M1_C=$(free_port); M1_P=$(free_port); M2_C=$(free_port); M2_P=$(free_port)
IC="m1=https://127.0.0.1:$M1_P,m2=https://127.0.0.1:$M2_P"
start_pd m1 "$M1_C" "$M1_P" "$WORK/member.toml" --initial-cluster "$IC" || fail "m1 starts"
start_pd m2 "$M2_C" "$M2_P" "$WORK/member.toml" --initial-cluster "$IC" || fail "m2 starts"
ok=""
for i in $(seq 100); do
    pdctl "https://127.0.0.1:$M1_C" pd-control tso >/dev/null 2>&1 && { ok=1; break; }
    sleep 0.1
done
check "members with CN PD-Member elect a leader and serve TSO" test -n "$ok"
PP=$M1_P
check_output "PD-Control is still refused by them" "^HTTP 403$" \
    peer_post pd-control /pd/peer/v1/vote "$VOTE"
cp "$WORK/last.out" "$WORK/vote-m1.out"
check_output "... and the answer names both member CNs" \
    '^"certificate CN \\"PD-Control\\" may not send PD peer requests: only PD members \(CN \\"PD-Server\\" or \\"PD-Member\\"\) may"$' \
    cat "$WORK/vote-m1.out"

finish
