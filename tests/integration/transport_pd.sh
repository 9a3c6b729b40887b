#!/usr/bin/env bash
# The transport under pd-server, attacked from outside: out of file descriptors, plaintext and
# binary junk on the TLS ports, a client cert without clientAuth, and what the log says about
# each (peer addresses, the security posture at start).
. "$(dirname "$0")/lib.sh"

make_pki || { fail "make certificates"; finish; }
CP=$(free_port)
PP=$(free_port)
URL="https://127.0.0.1:$CP"
pd_config "$WORK/pd.toml" '["PD-Control", "PD-Server"]'

# A tiny descriptor limit (soft = hard, so the daemon cannot raise it), then far more idle TCP
# connections than it can hold: no certificate needed to get there.
run_bg pd bash -c "ulimit -n 48 && exec '$BIN/pd-server' --name pd --data-dir '$WORK/pd.data' \
    --client-urls '$URL' --peer-urls 'https://127.0.0.1:$PP' --config '$WORK/pd.toml' \
    --log-file '$WORK/pd.log'"
PD=$LAST_PID
wait_port "$CP" || fail "pd-server listens"
check_output "the good case first: pd-ctl health" '"health": true' pdctl "$URL" pd-control health
check_output "the start-up log states the security posture and the allow-list" \
    'security: TLS on .*CN check on: cert-allowed-cn \["PD-Control", "PD-Server"\]' cat "$WORK/pd.log"

fds=()
for _ in $(seq 80); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$CP" && fds+=("$fd")
done
sleep 3
lines=$(grep -c 'cannot accept connections on port' "$WORK/pd.log")
size=$(stat -c %s "$WORK/pd.log")
if [ "$lines" -ge 1 ] && [ "$lines" -le 6 ]; then
    pass "out of descriptors: said so ($lines lines in 3 s), no accept loop"
else
    fail "out of descriptors: $lines 'cannot accept' lines in 3 s (want 1..6)"
fi
check_output "... and the message names the cause" 'Too many open files' \
    grep -m1 'cannot accept connections' "$WORK/pd.log"
if [ "$size" -lt 200000 ] && [ "$(stat -c %s "$WORK/pd.out")" -lt 10000 ]; then
    pass "the log and stderr stay small ($size bytes of log)"
else
    fail "the log grew to $size bytes, stderr to $(stat -c %s "$WORK/pd.out")"
fi
for fd in "${fds[@]}"; do exec {fd}>&-; done
ok=""
for _ in $(seq 50); do
    if pdctl "$URL" pd-control health >"$WORK/h.out" 2>&1; then ok=1; break; fi
    sleep 0.2
done
[ -n "$ok" ] && pass "served again once the idle connections are gone" \
    || { fail "served again once the idle connections are gone"; cat "$WORK/h.out"; }
stop_pid "$PD"

# Normal limits from here on.
start_pd pd2 "$CP" "$PP" "$WORK/pd.toml" || fail "pd-server restarts"
check_output "the good case: pd-ctl health" '"health": true' pdctl "$URL" pd-control health

# Plain HTTP on the HTTPS client port: the HTTPS server's own answer, and a log line that
# shows what was sent.
check_output "plain HTTP to the HTTPS port gets the HTTPS server's 400 answer" \
    'Client sent an HTTP request to an HTTPS server' \
    curl -s "http://127.0.0.1:$CP/pd/api/v1/health"
check_output "... and the log says plaintext, with the first bytes escaped" \
    '"reason":"client sent plaintext instead of TLS \(first bytes \\"GET /pd/api/v1/h\\"\); use https://"' \
    cat "$WORK/pd2.log"

# Request limits: a header or URL over 16 KB (400) and a body over 1 MB (413) are refused, and the
# same request at a normal size goes through.
curl_pd() {
    curl -s -o "$WORK/limit.out" -w '%{http_code}' --cacert "$CERTS/ca.pem" \
        --cert "$CERTS/pd-control.pem" --key "$CERTS/pd-control-key.pem" "$@"
}
check_output "a normal header is fine" '^200$' \
    curl_pd -H "X-Pad: $(head -c 1000 /dev/zero | tr '\0' a)" "$URL/pd/api/v1/health"
check_output "a 20 KB header is refused (libevent 2.1 answers 400)" '^400$' \
    curl_pd -H "X-Pad: $(head -c 20000 /dev/zero | tr '\0' a)" "$URL/pd/api/v1/health"
check_output "a 20 KB URL is refused (400)" '^400$' \
    curl_pd "$URL/pd/api/v1/health?x=$(head -c 20000 /dev/zero | tr '\0' a)"
head -c 2000000 /dev/zero | tr '\0' a >"$WORK/big.body"
check_output "a 2 MB body gets 413" '^413$' \
    curl_pd -X POST --data-binary @"$WORK/big.body" "$URL/pd/api/v1/tikv/register"
check_output "an unknown method gets a JSON 405, not libevent's HTML 501" '^405$' \
    curl_pd -X PATCH "$URL/pd/api/v1/health"
check_output "... whose body is JSON" '^"method not allowed on /pd/api/v1/health"$' cat "$WORK/limit.out"

# Binary junk: refused, logged with the caller's address (never "local").
printf '\x01\x02\x03\x04junk' | timeout 5 bash -c "cat >/dev/tcp/127.0.0.1/$CP" 2>/dev/null
sleep 0.3
check_output "binary junk is logged as not TLS, with the peer's address and the bytes" \
    '"peer":"127\.0\.0\.1:[0-9]+".*"result":"fail","reason":"the client sent bytes that are not TLS \(first bytes \\"\\\\x01\\\\x02\\\\x03\\\\x04junk\\"\)"' cat "$WORK/pd2.log"
if grep -q '"peer":"local"' "$WORK/pd2.log"; then
    fail "no handshake line says \"peer\":\"local\""
else
    pass "no handshake line says \"peer\":\"local\""
fi

# A client certificate made for servers only (extendedKeyUsage serverAuth): refused, and the
# log says which usage is missing.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=PD-Control \
    -keyout "$CERTS/srv-only-key.pem" -out "$WORK/srv-only.csr" 2>/dev/null
printf 'extendedKeyUsage = serverAuth\n' >"$WORK/eku.ext"
openssl x509 -req -in "$WORK/srv-only.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca-key.pem" \
    -CAcreateserial -days 2 -extfile "$WORK/eku.ext" -out "$CERTS/srv-only.pem" 2>/dev/null
check_fails "a client cert without clientAuth is refused" 'pd-ctl: ' \
    pdctl "$URL" srv-only health
check_output "... and the server log names the missing extended key usage" \
    'client certificate rejected: certificate extended key usage \(extendedKeyUsage\) does not allow this use \(a client certificate needs clientAuth\)' \
    cat "$WORK/pd2.log"
check_output "PD still serves the good client" '"health": true' pdctl "$URL" pd-control health

# An empty allow-list is visible at start.
pd_config "$WORK/open.toml" '[]'
stop_all
OP=$(free_port)
OPP=$(free_port)
start_pd open "$OP" "$OPP" "$WORK/open.toml" || fail "pd-server starts with an empty list"
check_output "an empty allow-list is a warning at start" \
    '\[WARN\].*CN check OFF: cert-allowed-cn is empty, any certificate signed by the CA is let in' \
    cat "$WORK/open.log"

finish
