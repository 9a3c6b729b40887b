#!/usr/bin/env bash
# PD's region 1 with a real TLS pd-server: three stores (curl with the TiKV-Server cert, as
# tikv-server does) register and heartbeat; the region gets all three as peers and each store
# learns the others' addresses; a "leader_of" heartbeat makes pd-ctl region 1 show the leader;
# a report with an older term is ignored; a fourth store is not added; the region survives a
# PD restart.
. "$(dirname "$0")/lib.sh"

make_pki || { fail "make certificates"; finish; }
CP=$(free_port)
PP=$(free_port)
URL=https://127.0.0.1:$CP
pd_config "$WORK/pd.toml" '["TiKV-Server", "TiDB-Server", "PD-Control"]'
start_pd pd1 "$CP" "$PP" "$WORK/pd.toml" || { fail "pd-server starts"; finish; }

# store_call PATH BODY: a POST to PD's TiKV API with the tikv-server certificate.
store_call() {
    curl -sS --fail-with-body --cacert "$CERTS/ca.pem" --cert "$CERTS/tikv-server.pem" \
        --key "$CERTS/tikv-server-key.pem" -d "$2" "$URL/pd/api/v1/tikv/$1"
}
# compact CMD...: CMD's JSON output without spaces and newlines (CMD's exit status kept).
compact() { "$@" | tr -d ' \n'; }
register() { compact store_call register "{\"address\":\"127.0.0.1:$1\",\"encrypted\":false}"; }
heartbeat() { compact store_call heartbeat "{\"store_id\":$1,\"capacity\":100${2:-}}"; }
region1() { compact pdctl "$URL" pd-control region "$@"; }
# report_then_region STORE TERM: STORE says it leads region 1 in TERM, then pd-ctl region 1.
report_then_region() {
    heartbeat "$1" ",\"leader_of\":[1],\"term\":$2" >/dev/null && region1 1
}

check_output "before any store, no region" '"count": 0' pdctl "$URL" pd-control region
check_output "store 1 registers and is region 1's only peer" \
    '"region":\{"id":1,"start_key":"","end_key":"","peers":\[\{"id":2,"store_id":1,"address":"127\.0\.0\.1:20160"\}\],"epoch":\{"conf_ver":1,"version":1\}\}' \
    register 20160
check_output "store 3 registers and sees the peers so far" \
    '"peers":\[\{"id":2,"store_id":1,"address":"127\.0\.0\.1:20160"\},\{"id":4,"store_id":3,"address":"127\.0\.0\.1:20161"\}\],"epoch":\{"conf_ver":2' \
    register 20161
check_output "store 5 registers as the third peer" '"store_id":5,.*"conf_ver":3' register 20162
check_output "store 1's heartbeat tells it of the peers added later" \
    '^\{"region":\{"id":1,.*"address":"127\.0\.0\.1:20161".*"address":"127\.0\.0\.1:20162".*"conf_ver":3,"version":1\}\},"ok":true\}$' \
    heartbeat 1
check_output "a fourth store registers (id 7) without a region" '^\{"store_id":7,"cluster_id":[0-9]+\}$' \
    register 20163
check_output "its heartbeat has no region either" '^\{"ok":true\}$' heartbeat 7

check_output "pd-ctl region 1 shows three peers and no leader yet" \
    '^\{"id":1,"start_key":"","end_key":"","epoch":\{"conf_ver":3,"version":1\},"peers":\[(\{"id":[246],"store_id":[135],"role_name":"Voter","address":"127\.0\.0\.1:2016[012]"\},?){3}\],"written_bytes":0,"read_bytes":0,"written_keys":0,"read_keys":0,"approximate_size":0,"approximate_keys":0\}$' \
    region1 1
check_output "store 3 reports leading region 1 in term 5" '^\{"region":\{"id":1,.*"ok":true\}$' \
    heartbeat 3 ',"leader_of":[1],"term":5'
check_output "pd-ctl region 1 shows store 3 as the leader" \
    '"leader":\{"id":4,"store_id":3,"role_name":"Voter","address":"127\.0\.0\.1:20161"\}' \
    region1 1
check_output "store 1 reports leading it in the older term 4: answered" '"ok":true\}$' \
    heartbeat 1 ',"leader_of":[1],"term":4'
check_output "... and ignored: store 3 still leads" '"leader":\{"id":4,"store_id":3,' \
    region1 1
check_output "... and PD logs why" 'store 1 reports leading region 1 in term 4, older than the recorded term 5: ignored as stale' \
    cat "$WORK/pd1.log"
check_output "the fourth store claiming leadership is ignored" '"leader":\{"id":4,"store_id":3,' \
    report_then_region 7 9
check_output "store 5 reports leading it in term 6: taken" '"leader":\{"id":6,"store_id":5,' \
    report_then_region 5 6
check_fails "a report without a term is refused naming the field" \
    '^"field \\"term\\" is missing, must be an integer' \
    store_call heartbeat '{"store_id":5,"leader_of":[1]}'
check_output "pd-ctl region lists the one region" '"count": 1' pdctl "$URL" pd-control region
check_output "... with 3 peers and the leader (4 Voter entries)" '^(.*"role_name":"Voter".*){4}$' \
    region1
check_fails "pd-ctl region 2 is not found" '^\[404\] region 2 not found$' \
    pdctl "$URL" pd-control region 2

# The region is in PD's state file: a restarted PD shows the same peers and leader.
stop_all
start_pd pd1 "$CP" "$PP" "$WORK/pd.toml" || { fail "pd-server restarts"; finish; }
for i in $(seq 50); do pdctl "$URL" pd-control region 1 >/dev/null 2>&1 && break; sleep 0.2; done
check_output "after a PD restart, region 1 has the same peers and leader" \
    '"epoch":\{"conf_ver":3,"version":1\}.*"leader":\{"id":6,"store_id":5,' \
    region1 1
check_output "and the stale term is still refused" '"leader":\{"id":6,"store_id":5,' \
    report_then_region 3 5
finish
