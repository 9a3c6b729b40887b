#!/usr/bin/env bash
# scripts/scenario as a user runs it: `list` names every scenario; `run all` reproduces each
# failure and its good case (exit 0, a summary table, Why/Fix and a RESULT for each) and leaves
# no process or file behind; the checker can fail: a scenario whose expected message is wrong,
# whose misconfiguration is absent (the refusal never happens) or whose good case is broken
# exits non-zero and says which check failed; an unknown name is refused.
. "$(dirname "$0")/lib.sh"

TOP=$(cd "$(dirname "$0")/../.." && pwd)
SCENARIO=$TOP/scripts/scenario
export TISIM_BIN=$BIN
export TMPDIR=$WORK/tmp     # every file a scenario makes lands here: checked empty afterwards
mkdir -p "$TMPDIR"
ALL=(cn-not-allowed ctl-cn-refused ctl-client-cn-not-listed untrusted-ca no-client-cert
    expired-cert not-yet-valid-cert san-mismatch plaintext-to-tls http-to-https cert-rotation
    ca-rotation status-port-cn seed-tikv-list-replication mysql-require-x509
    mysql-require-subject encryption-enable-later encryption-disable encryption-mixed-stores
    encryption-wrong-key tampered-data-file)
N=${#ALL[@]}

# --- list
check_output "scenario list exits 0 and describes each scenario" '^cn-not-allowed +TiDB' \
    "$SCENARIO" list
cp "$WORK/last.out" "$WORK/list.out"
check "... and names exactly the $N scenarios of the issue" \
    test "$(awk '{print $1}' "$WORK/list.out" | sort | tr '\n' ' ')" = \
    "$(printf '%s\n' "${ALL[@]}" | sort | tr '\n' ' ')"

# --- run all
check_output "scenario run all exits 0: every outcome as expected" \
    "^$N scenarios: $N as expected, 0 not" "$SCENARIO" run all
cp "$WORK/last.out" "$WORK/all.out"
for n in "${ALL[@]}"; do
    check_output "summary row: $n as expected, all its checks passed" \
        "^$n +as expected +[0-9.]+ s +([0-9]+)/\\1\$" cat "$WORK/all.out"
done
check "each scenario printed its RESULT line" \
    test "$(grep -cE '^RESULT [a-z0-9-]+: as expected \([0-9]+ checks\)$' "$WORK/all.out")" -eq "$N"
check "each explained why and how to fix it" \
    test "$(grep -c '^Why: ' "$WORK/all.out")" -eq "$N" -a "$(grep -c '^Fix: ' "$WORK/all.out")" -eq "$N"
check_output "the client's output and the daemons' log lines are shown, trimmed, with \$W for the temp dir" \
    'refused raft peer 127\.0\.0\.1:[0-9]+: CN "TiKV-Server"' cat "$WORK/all.out"
no_fail_line() { ! grep -E '^FAIL - ' "$1"; }
check "no check failed anywhere" no_fail_line "$WORK/all.out"
check "no file is left behind" test -z "$(ls -A "$TMPDIR")"
no_process() { ! pgrep -af "$TMPDIR"; }
check "no process is left behind" no_process

# --- the checker can fail: copies of the scenarios, each broken on purpose
WRONG=$WORK/wrong
cp -r "$TOP/scripts/scenarios" "$WRONG"
# 1. a wrong expected message
sed -i 's/TLS alert access_denied/TLS alert unknown_ca/' "$WRONG/ctl-cn-refused.sh"
check_fails "a wrong expected message: the scenario exits non-zero and names the failed check" \
    '^FAIL - pd-ctl \(CN Control-Client\) is refused in the handshake, and says why \(output does not match' \
    env TISIM_SCENARIO_DIR="$WRONG" "$SCENARIO" run ctl-cn-refused
cp "$WORK/last.out" "$WORK/wrong1.out"
check_output "... its RESULT says it did not match" \
    '^RESULT ctl-cn-refused: NOT as expected \(1 of [0-9]+ checks failed\)$' cat "$WORK/wrong1.out"
# 2. the misconfiguration is not there: the refusal never happens
sed -i 's/^sed -i .s\/\^cert-allowed-cn = .*tikv.toml"$/: list left complete/' "$WRONG/cn-not-allowed.sh"
check_fails "an expected refusal that does not happen fails the scenario" \
    '^FAIL - the client gets 1105 carrying TiKV.s refusal \(it succeeded\)' \
    env TISIM_SCENARIO_DIR="$WRONG" "$SCENARIO" run cn-not-allowed
# 3. the good case broken: it presents the refused certificate again
sed -i '/^step "Good case/,$ s/pd-control/client/g' "$WRONG/no-client-cert.sh"
check_fails "a good case that does not work fails the scenario" \
    '^FAIL - pd-ctl with --cert/--key \(CN PD-Control\) is served \(exit status 1\)' \
    env TISIM_SCENARIO_DIR="$WRONG" "$SCENARIO" run no-client-cert
check_fails "several scenarios, one broken: non-zero, the table says which" \
    "^ctl-cn-refused +NOT \\(1\\)" env TISIM_SCENARIO_DIR="$WRONG" "$SCENARIO" run -q ctl-cn-refused expired-cert
cp "$WORK/last.out" "$WORK/wrong2.out"
check_output "... and that the other one passed" "^expired-cert +as expected" cat "$WORK/wrong2.out"
check "no file is left behind by the failed runs either" test -z "$(ls -A "$TMPDIR")"

# --- usage errors
check_fails "an unknown scenario name: exit 2, one line" \
    "^scenario: no scenario named 'nope' \\(scripts/scenario list shows them\\)\$" "$SCENARIO" run nope
check_fails "no command: usage" 'scripts/scenario list' "$SCENARIO"

finish
