#!/usr/bin/env bash
# scripts/playground for real, in a temp --dir on a free --port-base: it comes up healthy, the
# commands it prints work as printed (mariadb one-way and mutual TLS, pd-ctl, tikv-ctl,
# tidb-ctl, curl), `matrix` shows the expected allowed and refused cells, `topology` the
# links, `export` a tiup layout whose PD config and certs start a PD; `down` stops every
# process; a second start reuses the dir's certs, key and data, and a playground killed
# with -9 takes its daemons along.
. "$(dirname "$0")/lib.sh"

TOP=$(cd "$(dirname "$0")/../.." && pwd)
PG=$TOP/scripts/playground
DIR=$WORK/pg
export TISIM_BIN=$BIN

# A block of 10 free ports (1 PD, 3 TiKV, TiDB) for --port-base.
pick_base() {
    local b p ok
    while :; do
        b=$((10000 + RANDOM % (EPHEMERAL_LOW - 10100)))
        ok=1
        for ((p = b; p < b + 10; p++)); do
            (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ok=""
        done
        [ -n "$ok" ] && { echo "$b"; return; }
    done
}
BASE=$(pick_base)

# start_pg OUT: the playground in the background; PG_PID; waits for its "ready" line.
start_pg() {
    "$PG" --no-setup --dir "$DIR" --port-base "$BASE" >"$WORK/$1" 2>&1 &
    PG_PID=$!
    PIDS+=("$PG_PID")
    wait_until 60 grep -q '^Logs in ' "$WORK/$1"
}
# printed N OUT: the Nth command the playground printed after "  $ ".
printed() { grep '^  \$ ' "$WORK/$2" | sed -n "${1}s/^  \\\$ //p"; }
# daemons: the pids of processes whose command line names the playground dir.
daemons() { pgrep -f -- "$DIR/" | grep -vx "$$" || true; }
# At exit, whatever happened: stop any daemon a broken playground left (by pid), then lib.sh's.
sweep() { local p; for p in $(daemons); do kill "$p" 2>/dev/null; done; }
trap 'sweep; cleanup' EXIT

if start_pg up1.out; then
    pass "the playground comes up: $(grep -o '^ready in [0-9.]* s' "$WORK/up1.out")"
else
    fail "the playground comes up"
    tail -n 20 "$WORK/up1.out"
    finish
fi
check_output "it uses --port-base and says so" "ports: from --port-base $BASE" cat "$WORK/up1.out"
check_output "it prints each listener with its certificate's CN" \
    "tikv3 +TLS RPC :$((BASE + 4)) KV\+Raft, https :$((BASE + 7)) status +certs/tikv-server.pem \(TiKV-Server\)" \
    cat "$WORK/up1.out"
check_output "... and the allow-lists from the config files" \
    'TiKV cert-allowed-cn += \["TiKV-Server", "TiDB-Server", "PD-Server", "TiKV-Control", "RawKvClient1", "Control-Client"\]' \
    cat "$WORK/up1.out"
check_output "... and every certificate's expiry" 'mysql-certs/client.pem +app-client +[0-9]{4}-[0-9]{2}-[0-9]{2}' \
    cat "$WORK/up1.out"

# --- the printed commands, run as printed
check_output "printed mariadb one-way TLS: the session is TLS, without a client cert" \
    '^Ssl_version	TLSv1\.2' bash -c "echo \"SHOW STATUS LIKE 'Ssl_version'\" | $(printed 1 up1.out) -N"
check_output "printed mariadb mutual TLS as app: inserts a row and reads it back" \
    'hello over mutual TLS' bash -c "$(printed 2 up1.out)"
stores_up() { [ "$(bash -c "$(printed 3 up1.out)" | grep -c '"state_name": "Up"')" -eq 3 ]; }
check "printed pd-ctl store: 3 stores Up" stores_up
check_output "printed tikv-ctl raw-put" '^success!$' bash -c "$(printed 4 up1.out)"
check_output "printed tikv-ctl raw-scan reads it" '^hello	world$' bash -c "$(printed 5 up1.out)"
check_output "printed tidb-ctl lists the playground's table" '"notes"' bash -c "$(printed 6 up1.out)"
check_output "printed curl gets a store's Raft status" '"role": "(leader|follower)"' bash -c "$(printed 7 up1.out)"
check_fails "a second playground on the same dir is refused" 'already runs on' \
    "$PG" --no-setup --dir "$DIR"

# --- matrix: cell CALLER COLUMN of the table
"$PG" matrix --dir "$DIR" >"$WORK/matrix.out" 2>&1
cell() {
    awk -v row="$1" -v col="$2" '
        $1 == "caller" { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        c && $1 == row { print $(c - 1); exit }' "$WORK/matrix.out"
}
expect_cell() { # CALLER COLUMN WANT WHY
    local got
    got=$(cell "$1" "$2")
    if [ "$got" = "$3" ]; then pass "matrix: $1 on $2 is $3 ($4)"; else
        fail "matrix: $1 on $2 is $3 ($4), got '${got}'"
        sed -n '/^caller CN/,/^$/p; /^Why/,$p' "$WORK/matrix.out" | sed 's/^/      /'
    fi
}
expect_cell Control-Client PD yes "the ctl CN is in PD's list"
expect_cell Control-Client TiKV-KV yes "and in TiKV's"
expect_cell TiDB-Server TiKV-KV yes "TiDB may call TiKV"
expect_cell Intruder PD no:TLS "PD checks the CN in the handshake"
expect_cell Intruder TiKV-KV no:CN "TiKV checks it per request"
expect_cell Intruder TiKV-st no:403 "TiKV's status port answers 403"
expect_cell TiKV-Server PD-peer no:403 "only PD members send peer RPCs"
expect_cell PD-Server TiDB-st no:TLS "PD-Server is not in cluster-verify-cn"
expect_cell app-client PD no:TLS "a MySQL-client cert is of another CA"
expect_cell app-client My-app yes "app's REQUIRE SUBJECT matches its cert"
expect_cell "(none)" My-root yes "root needs no client cert"
expect_cell "(none)" My-app no:1045 "app's REQUIRE refuses a login without a cert"
check_output "matrix: every certificate's expiry is a column" '^Intruder +[0-9]{4}-[0-9]{2}-[0-9]{2} ' \
    cat "$WORK/matrix.out"
check_output "matrix: TiKV's own words for a refused CN" \
    'UNAUTHENTICATED: Common name check fail, reason: x509_common_name from peer is Intruder' \
    cat "$WORK/matrix.out"

# --- topology
"$PG" topology --dir "$DIR" --dot "$WORK/topo.dot" >"$WORK/topo.out" 2>&1
check_output "topology: store 1's link to PD, with the CN each side presented" \
    'tikv1 +-> pd1 +TiKV-Server -> PD-Server +store [0-9]+ Up' cat "$WORK/topo.out"
check_output "topology: Raft links between stores" \
    'tikv[0-9] +-> tikv[0-9] +TiKV-Server -> TiKV-Server +Raft link up, voter' cat "$WORK/topo.out"
check_output "topology: the refused Intruder seen by PD (from its log)" \
    'Intruder +-> pd1 +0 ok, +[1-9][0-9]* refused' cat "$WORK/topo.out"
check_output "topology: Graphviz DOT with the links" '"tikv1" -> "pd1" \[color=darkgreen' cat "$WORK/topo.dot"

# --- export: the PD config and certs it wrote start a PD that the exported client cert reaches
check "export writes the tiup layout" "$PG" export "$WORK/ex" --dir "$DIR"
check_output "... topology.yaml with PD's allow-list" \
    'security.cert-allowed-cn: \["TiKV-Server", "TiDB-Server", "PD-Control", "Control-Client"\]' \
    cat "$WORK/ex/topology.yaml"
sed "s#/tidb-deploy/#$WORK/ex/deploy/#" "$WORK/ex/deploy/pd-$BASE/conf/pd.toml" >"$WORK/ex-pd.toml"
EX_C=$(free_port); EX_P=$(free_port)
start_pd expd "$EX_C" "$EX_P" "$WORK/ex-pd.toml" || fail "a PD starts from the exported config and certs"
check_output "... and answers the exported tiup client cert" '"health": true' \
    "$BIN/pd-ctl" -u "https://127.0.0.1:$EX_C" --cacert "$WORK/ex/tiup-client-tls/ca.crt" \
    --cert "$WORK/ex/tiup-client-tls/client.crt" --key "$WORK/ex/tiup-client-tls/client.pem" health
stop_pid "$LAST_PID"

# --- down from another shell: every process stopped, none left
check_output "down stops the playground and says what it stopped" 'stopped the playground .* 5 processes' \
    "$PG" down --dir "$DIR"
wait "$PG_PID" 2>/dev/null
check_output "... the playground said so too" '^playground: stopped 5 processes' cat "$WORK/up1.out"
gone() { [ -z "$(daemons)" ]; }
check "... and no process of it is left" gone

# --- a second start reuses the dir; a playground killed with -9 takes its daemons along
if start_pg up2.out; then
    pass "a second start on the same dir: $(grep -o '^ready in [0-9.]* s' "$WORK/up2.out")"
else
    fail "a second start on the same dir"; tail -n 20 "$WORK/up2.out"
fi
check_output "... reuses its certs, cipher-file and configs" \
    'reusing the cluster set.*reusing the MySQL-client set.*cipher-file: reusing.*configs: reusing' \
    bash -c "tr '\n' ' ' <'$WORK/up2.out'"
check_output "... and its data: the row inserted before is read back" 'hello over mutual TLS' \
    bash -c "$(printed 2 up2.out | sed 's/-e ".*"$//') -N -e 'SELECT note FROM playground.notes'"
kill -9 "$PG_PID"
wait "$PG_PID" 2>/dev/null
check "kill -9 of the playground: its daemons follow (parent-death signal)" wait_until 15 gone

for f in "$DIR"/logs/*.out; do
    if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:|Segmentation fault|Aborted' "$f"; then
        fail "no memory error or crash in $(basename "$f" .out)"
        grep -E -A12 'Sanitizer|runtime error' "$f" | head -n 30 | sed 's/^/      /'
    fi
done
finish
