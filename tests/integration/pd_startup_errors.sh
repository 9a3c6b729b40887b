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
check_fails "partial [security] names the missing key" \
    '^pd-server: \[security\] key-path is not set: cacert-path, cert-path and key-path must be set together' \
    pd --config "$WORK/partial.toml"

pd_config "$WORK/good.toml" '["PD-Control"]'
check_fails "http:// client URL with TLS on says to use https" \
    "^pd-server: --client-urls http://127\\.0\\.0\\.1:$CP: TLS is on \\(\\[security\\] cacert-path is set\\), use an https:// URL\$" \
    pd --config "$WORK/good.toml" --client-urls "http://127.0.0.1:$CP"
check_fails "https:// without [security] says TLS is not configured" \
    "^pd-server: --client-urls https://127\\.0\\.0\\.1:$CP: https needs TLS, set \\[security\\] cacert-path, cert-path and key-path\$" \
    timeout 10 "$BIN/pd-server" --name pd1 --data-dir "$WORK/pd1.data" \
    --client-urls "https://127.0.0.1:$CP" --peer-urls "https://127.0.0.1:$PP"

printf '[security]\ncacert-path = "%s"\ncert-path = %s\n' "$CERTS/ca.pem" unquoted >"$WORK/bad.toml"
check_fails "malformed config names file and line" \
    "^pd-server: $WORK/bad\\.toml:3: value for 'cert-path' must be a quoted string\$" \
    pd --config "$WORK/bad.toml"
check_fails "missing config file is named" \
    "^pd-server: cannot read config $WORK/nope\\.toml: No such file or directory\$" \
    pd --config "$WORK/nope.toml"

sed "s#pd-server.pem#missing.pem#" "$WORK/good.toml" >"$WORK/nocert.toml"
check_fails "unreadable cert file is named" \
    "^pd-server: cert-path $CERTS/missing\\.pem: cannot read it: No such file or directory\$" \
    pd --config "$WORK/nocert.toml"
check_fails "unknown flag" '^pd-server: unknown flag --bogus' pd --config "$WORK/good.toml" --bogus
check_fails "initial-cluster without this member" \
    "^pd-server: --initial-cluster does not list this member's --name 'pd1'\$" \
    pd --config "$WORK/good.toml" --initial-cluster "pdx=https://127.0.0.1:$PP"

mkdir -p "$WORK/corrupt.data"
echo '{"term": 1, "state": ' >"$WORK/corrupt.data/state.json"
check_fails "a corrupt state file is named and kept, not replaced" \
    "^pd-server: $WORK/corrupt\\.data/state\\.json is corrupt \\(" \
    timeout 10 "$BIN/pd-server" --name pd1 --data-dir "$WORK/corrupt.data" \
    --client-urls "https://127.0.0.1:$CP" --peer-urls "https://127.0.0.1:$PP" --config "$WORK/good.toml"
check_output "the corrupt file is still there for the user" '"state": $' cat "$WORK/corrupt.data/state.json"

# A state file that parses but holds a bad field: refused with the file and the field named.
state_file() { # FIELDS_OF_STATE: a state.json in $WORK/bad.data
    mkdir -p "$WORK/bad.data"
    printf '{"term": 2, "voted_for": "pd1", "state": {"version": 1, "version_term": 1, %s, "encryption": "off", "stores": [], "regions": []}}\n' \
        "$1" >"$WORK/bad.data/state.json"
}
pd_bad_state() {
    timeout 10 "$BIN/pd-server" --name pd1 --data-dir "$WORK/bad.data" \
        --client-urls "https://127.0.0.1:$CP" --peer-urls "https://127.0.0.1:$PP" --config "$WORK/good.toml"
}
state_file '"next_id": 1, "tso_hw": -5'
check_fails "a negative tso_hw is refused, naming the file and field" \
    "^pd-server: $WORK/bad\\.data/state\\.json is corrupt: field \"state\\.tso_hw\" is -5, must be an integer from 0 to 35184372088831; refusing to start \\(the file is kept as it is\\)\$" \
    pd_bad_state
check_output "... and the file is kept" '"tso_hw": -5' cat "$WORK/bad.data/state.json"
state_file '"next_id": 1, "tso_hw": 9223372036854775807'
check_fails "tso_hw = INT64_MAX is refused (no TSO could ever be handed out)" \
    'field "state\.tso_hw" is 9223372036854775807, must be an integer from 0 to 35184372088831' \
    pd_bad_state
state_file '"next_id": -1, "tso_hw": 0'
check_fails "next_id -1 is refused" 'field "state\.next_id" is -1, must be an integer from 1 to' \
    pd_bad_state
sed -i 's/"term": 2/"term": "x"/' "$WORK/bad.data/state.json"
sed -i 's/"next_id": -1/"next_id": 1/' "$WORK/bad.data/state.json"
check_fails 'a "term" that is not a number is refused' 'field "term" is "x", must be an integer from 0 to' \
    pd_bad_state

# The file names another client URL: the --client-urls flag must win.
OTHER=$(free_port)
printf 'unknown-top = 1\nclient-urls = "https://127.0.0.1:%s"\n' "$OTHER" |
    cat - "$WORK/good.toml" >"$WORK/unknown.toml"
# The good case of the state checks: a valid file is loaded (its high-water, 100 s ahead of
# the clock, is where TSO starts).
HW=$(($(date +%s%3N) + 100000))
state_file "\"next_id\": 1, \"tso_hw\": $HW"
mkdir -p "$WORK/pd1.data"
cp "$WORK/bad.data/state.json" "$WORK/pd1.data/state.json"
start_pd pd1 "$CP" "$PP" "$WORK/unknown.toml" || fail "pd-server starts with a good config"
TS=$(pdctl "https://127.0.0.1:$CP" pd-control tso)
check "a valid state file is loaded: TSO starts at its high-water" test "$((${TS:-0} >> 18))" -ge "$HW"
check "the --client-urls flag overrides client-urls from the file" \
    bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$OTHER) 2>/dev/null"
check_output "the good config serves" '"health": true' pdctl "https://127.0.0.1:$CP" pd-control health
check_output "unknown key is a warning naming file and line, on stderr" \
    'unknown.toml:1: unknown key' cat "$WORK/pd1.out"
check_output "... and in the log file" 'unknown.toml:1: unknown key' cat "$WORK/pd1.log"
check_output "pd-server --help lists the flags" '^  --initial-cluster ' "$BIN/pd-server" --help

finish
