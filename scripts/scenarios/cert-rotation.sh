#!/usr/bin/env bash
# cert-rotation: PD's certificate and key replaced on disk while it runs; no restart.
. "$(dirname "$0")/_lib.sh"
title "PD's cert and key files are replaced by a new pair while PD runs" \
    "the next connection is served the new certificate (new serial and expiry), by the same process"
certs
newcert pd-new PD-Server --days 30 --san 127.0.0.1 --san localhost
pd_up

# served: the certificate PD presents to a new connection, as openssl s_client sees it.
# (s_client's own exit status varies with how the server closes; x509 fails if no cert came.)
served() {
    { echo | openssl s_client -connect "127.0.0.1:$PD_C" -CAfile "$CERTS/ca.pem" \
        -cert "$CERTS/pd-control.pem" -key "$CERTS/pd-control-key.pem" 2>/dev/null || true; } |
        openssl x509 -noout -subject -serial -enddate
}

step "Before: the certificate a new connection gets"
note "served = echo | openssl s_client -connect 127.0.0.1:$PD_C -CAfile ca.pem -cert pd-control.pem \\"
note "             -key pd-control-key.pem | openssl x509 -noout -subject -serial -enddate"
expect_served "openssl s_client sees PD's certificate" '^serial=' served
OLD=$(grep '^serial=' "$W/last.out")

step "Rotate: the new pair renamed over pd-server-key.pem and pd-server.pem"
swap "$CERTS/pd-new-key.pem" "$CERTS/pd-server-key.pem"
swap "$CERTS/pd-new.pem" "$CERTS/pd-server.pem"
run openssl x509 -noout -serial -enddate -in "$CERTS/pd-server.pem"
NEW=$(grep '^serial=' "$W/last.out")

step "After: a new connection, no restart"
expect_served "a new connection is served the new certificate" "^$NEW\$" served
check "... which is not the old one" test "$OLD" != "$NEW"
expect_log "PD logs that it loaded the changed files" pd 'TLS: loaded cert-path .*pd-server.pem \(changed on disk\)'
expect_served "pd-ctl still verifies PD and is served" '"health": true' \
    "${PDCTL[@]}" --cert "$CERTS/pd-control.pem" --key "$CERTS/pd-control-key.pem" health
check "PD is the same process (no restart)" kill -0 "${DPID[pd]}"

explain "As the TLS guide says of TiDB, PD and TiKV, a daemon rereads its cert-path and key-path for
each new connection when the files changed on disk (inode, size, mtime): new connections get the new
pair, open ones keep theirs." \
    "rotate by writing the new files next to the old ones and renaming them over (key first, then
cert); a pair that does not match fails only the connections in between. The CA is another matter: ca-rotation."
verdict
