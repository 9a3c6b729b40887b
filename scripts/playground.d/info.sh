# shellcheck shell=bash
# What the playground prints once it is healthy (and `scripts/playground info` again):
# where each piece listens, the certificate and CN each presents, the allow-lists read back
# from the config files, every certificate's expiry, and commands to paste. Needs common.sh
# and config.sh.

pg_print_listeners() {
    local i cn_pd cn_kv cn_db
    cn_pd=$(pg_cert_cn "$CERTS/pd-server.pem") cn_kv=$(pg_cert_cn "$CERTS/tikv-server.pem")
    cn_db=$(pg_cert_cn "$CERTS/tidb-server.pem")
    pg_step "Where each piece listens, and the certificate it presents (serving and dialing)"
    printf '  %-8s %-46s %s\n' process "listens on (127.0.0.1)" "certificate (CN)"
    for ((i = 0; i < NPD; i++)); do
        printf '  %-8s %-46s %s\n' "pd$((i + 1))" "https :${PD_C[$i]} client, https :${PD_P[$i]} peer" \
            "certs/pd-server.pem ($cn_pd)"
    done
    for ((i = 0; i < NTIKV; i++)); do
        printf '  %-8s %-46s %s\n' "tikv$((i + 1))" "TLS RPC :${KV[$i]} KV+Raft, https :${ST[$i]} status" \
            "certs/tikv-server.pem ($cn_kv)"
    done
    printf '  %-8s %-46s %s\n' tidb "MySQL :$MY (TLS after SSLRequest)" \
        "mysql-certs/server.pem ($(pg_cert_cn "$MYCERTS/server.pem"), MySQL CA)"
    printf '  %-8s %-46s %s\n' "" "https :$TS status" "certs/tidb-server.pem ($cn_db), also to dial PD, TiKV"
    printf '  %-8s %-46s %s\n' "ctl" "(pd-ctl, tikv-ctl, tidb-ctl, curl)" \
        "certs/client.pem ($(pg_cert_cn "$CERTS/client.pem"))"
    printf '  %-8s %-46s %s\n' "mysql" "(user app; root needs no cert)" \
        "mysql-certs/client.pem ($(pg_cert_cn "$MYCERTS/client.pem"), MySQL CA)"
    pg_say "  TiKV data is encrypted at rest with $CIPHER (AES-256-GCM); all in $D"
}

pg_print_allow_lists() {
    pg_step "Who may call whom (the caller's certificate CN against the callee's list)"
    pg_say "  PD   cert-allowed-cn   = $(pg_conf_list "$CONF/pd1.toml" cert-allowed-cn)"
    pg_say "       checked in the TLS handshake on both ports; peer RPCs (vote, append) only from PD-Server"
    pg_say "  TiKV cert-allowed-cn   = $(pg_conf_list "$CONF/tikv1.toml" cert-allowed-cn)"
    pg_say "       any cert of the CA completes the handshake; the CN is checked per request"
    pg_say "       (UNAUTHENTICATED), on the status port per path (403 but for /status, /metrics)"
    pg_say "  TiDB cluster-verify-cn = $(pg_conf_list "$CONF/tidb.toml" cluster-verify-cn)"
    pg_say "       its status port, checked in the handshake"
    pg_say "  TiDB MySQL port: ssl-ca = the MySQL CA (a client cert, when sent, must be of it),"
    pg_say "       require-secure-transport = true (no plaintext login), per user REQUIRE:"
    pg_say "       root: none (one-way TLS);  app: REQUIRE SUBJECT '/CN=app-client' AND ISSUER '/CN=tisim MySQL CA'"
    pg_say "  Links: tikv* -> pd (TiKV-Server), tikv <-> tikv Raft (TiKV-Server), tidb -> pd and"
    pg_say "         tikv (TiDB-Server)$([ "$NPD" -gt 1 ] && echo ", pd <-> pd (PD-Server)"), ctl tools -> all (Control-Client)"
}

pg_print_certs() {
    local e f days note
    pg_step "Certificates (valid until; a warning under 30 days)"
    for e in "${PG_CERT_LIST[@]}"; do
        f=$D/${e%%|*}.pem
        [ -f "$f" ] || continue
        days=$(pg_cert_days "$f")
        note=""
        [ "$days" -lt 30 ] && note="  <-- WARNING: $days days left"
        printf '  %-24s %-20s %s  %s%s\n' "${e%%|*}.pem" "$(pg_cert_cn "$f")" "$(pg_cert_end "$f")" \
            "${e#*|}" "$note"
    done
}

# Commands, one a line after "  $ ", so a test (or a person) can run them as printed.
pg_print_commands() {
    pg_step "Try (copy-paste)"
    pg_say "  # MySQL, one-way TLS: the client checks TiDB's cert against the MySQL CA"
    pg_say "  \$ $(pg_mariadb_oneway)"
    pg_say "  # MySQL, mutual TLS as 'app' (REQUIRE SUBJECT): insert a row and read it back"
    pg_say "  \$ $(pg_mariadb_mutual) -e \"INSERT INTO playground.notes (note) VALUES ('hello over mutual TLS'); SELECT * FROM playground.notes\""
    pg_say "  # PD: stores, region 1 and its leader, members"
    pg_say "  \$ $(pg_pdctl_cmd) store"
    pg_say "  # TiKV: a raw write and read through store 1 (a follower forwards you to the leader)"
    pg_say "  \$ $(pg_tikvctl_cmd 1) raw-put hello world"
    pg_say "  \$ $(pg_tikvctl_cmd 1) raw-scan --limit 5"
    pg_say "  # TiDB status port: tables of the playground database"
    pg_say "  \$ $(pg_tidbctl_cmd) schema in playground"
    pg_say "  # TiKV status: the store's Raft role and links"
    pg_say "  \$ curl -s --cacert $CERTS/ca.pem --cert $CERTS/client.pem --key $CERTS/client-key.pem https://127.0.0.1:${ST[0]}/status"
    local dflag=""
    [ "$D" != "$PG_TOP/.tisim/playground" ] && dflag=" --dir $D"
    pg_say "  # who may call whom, live; the TLS links; a tiup cluster layout of this PKI and config"
    pg_say "  \$ $PG_TOP/scripts/playground matrix$dflag"
    pg_say "  \$ $PG_TOP/scripts/playground topology$dflag"
    pg_say "  \$ $PG_TOP/scripts/playground export /tmp/tisim-export$dflag"
    pg_say ""
    pg_say "Logs in $LOGS. Ctrl-C here, or \`scripts/playground down$dflag\` in another shell, stops it."
}

pg_print_info() {
    pg_print_listeners
    pg_print_allow_lists
    pg_print_certs
    pg_warn_expiring
    pg_print_commands
}
