#!/usr/bin/env bash
# Clients check the server's certificate against the address they dialed (IP SANs too):
# a PD on 127.0.0.2 whose cert covers only 127.0.0.1/localhost is refused by pd-ctl and curl;
# after its cert is rotated to one with SAN 127.0.0.2, the same PD is accepted.
. "$(dirname "$0")/lib.sh"

make_pki || { fail "make certificates"; finish; }
CP=$(free_port)
PP=$(free_port)
pd_config "$WORK/pd.toml" '["PD-Control"]'
run_bg pd1 "$BIN/pd-server" --name pd1 --data-dir "$WORK/pd1.data" \
    --client-urls "https://127.0.0.2:$CP" --peer-urls "https://127.0.0.2:$PP" \
    --config "$WORK/pd.toml" --log-file "$WORK/pd1.log"
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.2/$CP") 2>/dev/null && break; sleep 0.1; done
URL=https://127.0.0.2:$CP

check_fails "pd-ctl refuses a server cert without the dialed IP" \
    "the server's certificate does not match host 127\\.0\\.0\\.2 \\(it has no subjectAltName for it\\)\$" \
    pdctl "$URL" pd-control health
check_fails "curl refuses it too" \
    "SSL: no alternative certificate subject name matches target host name '127\\.0\\.0\\.2'" \
    curl -sS --fail --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" "$URL/pd/api/v1/health"

"$BIN/tisim-certs" cert --ca-cert "$CERTS/ca.pem" --ca-key "$CERTS/ca-key.pem" --cn PD-Server \
    --san 127.0.0.2 --out-cert "$WORK/pd2.pem" --out-key "$WORK/pd2-key.pem" >/dev/null
cp "$WORK/pd2-key.pem" "$CERTS/pd-server-key.pem"
cp "$WORK/pd2.pem" "$CERTS/pd-server.pem"
check_output "with SAN 127.0.0.2 the same PD is accepted by pd-ctl" '"health": true' \
    pdctl "$URL" pd-control health
check_output "and by curl" '"health": true' \
    curl -sS --fail --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" "$URL/pd/api/v1/health"

finish
