#!/usr/bin/env bash
# seed-tikv-list-replication: the guide's TiKV cert-allowed-cn verbatim on 3 stores (no "TiKV-Server").
. "$(dirname "$0")/_lib.sh"
title "three stores use the TLS guide's TiKV [security] verbatim: its cert-allowed-cn lacks \"TiKV-Server\"" \
    "the stores refuse each other's Raft messages (the CN they dial with); one store serves alone; with \"TiKV-Server\" added they replicate"
certs
pd_up '["TiKV-Server", "PD-Control"]'
tikv_config "$W/seed.toml" "$W/cipher-file-256"
multi_tikv_config "$W/fixed.toml" "$W/cipher-file-256"
step "The guide's TiKV list, used verbatim by three stores"
run grep cert-allowed-cn "$W/seed.toml"
for i in 1 2 3; do tikv_up "tikv$i" "$W/seed.toml"; done

is_leader() { tikv_status "${ST[tikv$1]}" | grep -q '"role": "leader"'; }
leader() { local i; for i in 1 2 3; do is_leader "$i" && { echo "$i"; return 0; }; done; return 1; }

step "Broken: the stores with the guide's list"
check "one store bootstraps region 1 and leads it alone" wait_until 15 leader
L=$(leader)
REFUSED='WARN.*refused raft peer 127\.0\.0\.1:[0-9]+: CN "TiKV-Server" not in cert-allowed-cn'
# refuser: the first store other than the leader that logged a refused Raft peer.
refuser() {
    local i
    for i in 1 2 3; do
        [ "$i" != "$L" ] && log_has "tikv$i" "$REFUSED" && { echo "$i"; return 0; }
    done
    return 1
}
check "the leader tries to add the others; one refuses it" wait_until 30 refuser
O=$(refuser)
expect_log "store $O logs the refused Raft peer and its CN" "tikv$O" "$REFUSED"
LINK='raft link to store [0-9]+ \(127\.0\.0\.1:[0-9]+\) refused: Common name check fail, reason: x509_common_name from peer is TiKV-Server'
wait_log 10 "tikv$L" "$LINK"
expect_log "the leader logs the refusal with TiKV's words" "tikv$L" "$LINK"
# status_of N: the store's data count and refused callers, from its /status.
status_of() {
    tikv_status "${ST[tikv$1]}" | tr -d '\n' | tr -s ' ' |
        grep -oE '"key_count": [0-9]+|"refused_callers": \[[^]]*\]'
}
note "status_of N = curl --cacert ca.pem --cert tikv-control.pem ... https://127.0.0.1:STATUS/status, two fields"
expect_served "store $O's /status lists the refused caller's CN" '"refused_callers": \[.*"cn": "TiKV-Server"' \
    status_of "$O"
expect_output "... and it holds no data" '"key_count": 0'
tikvctl "tikv$L" tikv-control
expect_served "the leader still serves clients alone" '^success!$' "${TIKVCTL[@]}" raw-put seed:1 alone

step "Good case: \"TiKV-Server\" added, the same data dirs restarted"
run grep cert-allowed-cn "$W/fixed.toml"
for i in 1 2 3; do tikv_down "tikv$i"; done
for i in 1 2 3; do tikv_up "tikv$i" "$W/fixed.toml"; done
voters() {
    local l
    l=$(leader) || return 1
    [ "$(tikv_status "${ST[tikv$l]}" | grep -c '"member": "voter"')" -eq 2 ]
}
check "the three stores replicate: the leader has two voters" wait_until 30 voters
caught_up() { [ "$(status_num "${ST[tikv$O]}" key_count)" = 1 ]; }
check "store $O caught up with the key written while it was refused" wait_until 20 caught_up
tikvctl "tikv$O" tikv-control
expect_served "a read through it reaches the leader" '^alone$' "${TIKVCTL[@]}" raw-get seed:1

explain "Stores send each other Raft messages with their own server certificate (CN TiKV-Server), and
each store checks the caller's CN against its cert-allowed-cn; the guide's list was written for clients
(TiDB, PD, ctl) and has no TiKV-Server, so every store refuses every other." \
    "for more than one store, add \"TiKV-Server\" (the CN of the stores' certificates) to every
TiKV's cert-allowed-cn and restart them; they catch up from the leader's Raft log."
verdict
