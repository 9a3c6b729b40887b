#!/usr/bin/env bash
# expired-cert: an expired client certificate, then an expired server certificate.
. "$(dirname "$0")/_lib.sh"
title "a certificate past its notAfter: pd-ctl's, then PD's own" \
    "PD refuses the expired client (certificate_expired); pd-ctl refuses the expired server; renewed certs are served"
certs
newcert expired-ctl PD-Control --expired
newcert pd-expired PD-Server --expired --san 127.0.0.1 --san localhost
newcert pd-renewed PD-Server --san 127.0.0.1 --san localhost

step "PD, and a PD-Control certificate that expired yesterday"
pd_up
run openssl x509 -noout -subject -enddate -in "$CERTS/expired-ctl.pem"

step "Broken (client side): pd-ctl presents the expired certificate"
expect_refused "PD refuses it with certificate_expired, and pd-ctl says so" \
    'the peer says our certificate has expired or is not yet valid \(TLS alert certificate_expired\)$' \
    "${PDCTL[@]}" --cert "$CERTS/expired-ctl.pem" --key "$CERTS/expired-ctl-key.pem" health
expect_log "PD logs the expired client certificate" pd \
    '"peer_cn":"PD-Control","result":"fail","reason":"client certificate rejected: certificate has expired"'
expect_served "good case: a valid PD-Control certificate is served by the same PD" '"health": true' \
    "${PDCTL[@]}" --cert "$CERTS/pd-control.pem" --key "$CERTS/pd-control-key.pem" health

step "Broken (server side): PD's certificate files replaced by an expired pair"
note "(PD rereads its cert and key for each new connection; no restart needed for either change)"
swap "$CERTS/pd-expired-key.pem" "$CERTS/pd-server-key.pem"
swap "$CERTS/pd-expired.pem" "$CERTS/pd-server.pem"
expect_refused "pd-ctl refuses PD's expired certificate" \
    "the server's certificate is not trusted: certificate has expired$" \
    "${PDCTL[@]}" --cert "$CERTS/pd-control.pem" --key "$CERTS/pd-control-key.pem" health
expect_log "PD logs that the client refused its certificate" pd \
    '"result":"fail","reason":"the peer says our certificate has expired or is not yet valid \(TLS alert certificate_expired\)"'

step "Good case: a renewed PD certificate, renamed into place"
swap "$CERTS/pd-renewed-key.pem" "$CERTS/pd-server-key.pem"
swap "$CERTS/pd-renewed.pem" "$CERTS/pd-server.pem"
expect_served "pd-ctl is served again, by the same PD process" '"health": true' \
    "${PDCTL[@]}" --cert "$CERTS/pd-control.pem" --key "$CERTS/pd-control-key.pem" health
check "PD did not restart" kill -0 "${DPID[pd]}"

explain "Both sides check the other's validity period in the handshake, against their own clock;
the side that refuses names the reason in its log, the other only sees the certificate_expired alert." \
    "renew before notAfter (openssl x509 -noout -enddate -in cert.pem): write the new cert and key
over the old files; new connections use them without a restart (cert-rotation shows it)."
verdict
