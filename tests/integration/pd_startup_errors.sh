#!/usr/bin/env bash
# pd-server refuses to start on a bad configuration, with one line that names the cause,
# and starts with the good configuration in the same setup.
. "$(dirname "$0")/lib.sh"

make_pki || { fail "make certificates"; finish; }
CP=$(free_port)
PP=$(free_port)
pd() {
    timeout 10 "$BIN/pd-server" --name pd1 --data-dir "$WORK/pd1.data" \
        --client-urls "https://127.0.0.1:$CP" --peer-urls "https://127.0.0.1:$PP" "$@"
}

cat >"$WORK/partial.toml" <<TOML
[security]
cacert-path = "$CERTS/ca.pem"
cert-path = "$CERTS/pd-server.pem"
TOML
check_fails "partial [security] names the missing key" 'key-path is not set' \
    pd --config "$WORK/partial.toml"

pd_config "$WORK/good.toml" '["PD-Control"]'
check_fails "http:// client URL with TLS on says to use https" 'use an https:// URL' \
    pd --config "$WORK/good.toml" --client-urls "http://127.0.0.1:$CP"
check_fails "https:// without [security] says TLS is not configured" 'https needs TLS' \
    timeout 10 "$BIN/pd-server" --name pd1 --data-dir "$WORK/pd1.data" \
    --client-urls "https://127.0.0.1:$CP" --peer-urls "https://127.0.0.1:$PP"

printf '[security]\ncacert-path = "%s"\ncert-path = %s\n' "$CERTS/ca.pem" unquoted >"$WORK/bad.toml"
check_fails "malformed config names file and line" 'bad.toml:3:' pd --config "$WORK/bad.toml"
check_fails "missing config file is named" 'nope.toml' pd --config "$WORK/nope.toml"

sed "s#pd-server.pem#missing.pem#" "$WORK/good.toml" >"$WORK/nocert.toml"
check_fails "unreadable cert file is named" 'missing.pem' pd --config "$WORK/nocert.toml"
check_fails "unknown flag" 'unknown flag --bogus' pd --config "$WORK/good.toml" --bogus
check_fails "initial-cluster without this member" "does not list this member" \
    pd --config "$WORK/good.toml" --initial-cluster "pdx=https://127.0.0.1:$PP"

mkdir -p "$WORK/corrupt.data"
echo '{"term": 1, "state": ' >"$WORK/corrupt.data/state.json"
check_fails "a corrupt state file is named and kept, not replaced" 'state.json is corrupt' \
    timeout 10 "$BIN/pd-server" --name pd1 --data-dir "$WORK/corrupt.data" \
    --client-urls "https://127.0.0.1:$CP" --peer-urls "https://127.0.0.1:$PP" --config "$WORK/good.toml"
check_output "the corrupt file is still there for the user" '"state": $' cat "$WORK/corrupt.data/state.json"

# The file names another client URL: the --client-urls flag must win.
OTHER=$(free_port)
printf 'unknown-top = 1\nclient-urls = "https://127.0.0.1:%s"\n' "$OTHER" |
    cat - "$WORK/good.toml" >"$WORK/unknown.toml"
start_pd pd1 "$CP" "$PP" "$WORK/unknown.toml" || fail "pd-server starts with a good config"
check "the --client-urls flag overrides client-urls from the file" \
    bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$OTHER) 2>/dev/null"
check_output "the good config serves" '"health": true' pdctl "https://127.0.0.1:$CP" pd-control health
check_output "unknown key is a warning naming file and line, on stderr" \
    'unknown.toml:1: unknown key' cat "$WORK/pd1.out"
check_output "... and in the log file" 'unknown.toml:1: unknown key' cat "$WORK/pd1.log"
check_output "pd-server --help lists the flags" '--initial-cluster' "$BIN/pd-server" --help

finish
