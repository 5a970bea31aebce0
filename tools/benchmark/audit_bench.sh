# Figure g of tools/bench (sourced by it; issue #7 "Audit: entries/s vs the
# bare verification loop", target >= 0.8): a ledger-mode log of signed
# access records built through the library (ledger-bench build-audit-log),
# served by ledgerd, audited by `ledger-verify audit` online and offline
# (against a `ledger-verify mirror` copy), compared with the bare Ed25519
# verification loop on both cores (ledger-bench verify-baseline --threads 2,
# figure d's baseline) measured in the same run, before and after the
# audits. Also ledger-verify's peak RSS per entry: the full log's audit and
# an audit of a quarter of it (--checkpoint at that size) give the growth
# per entry.
#
# Two ratios, because the machine is shared: the wall-clock one (entries/s
# over verifications/s, both on 2 threads) and the CPU one (CPU time per
# verification over CPU time per audited entry, ledgerd's serving included
# for the online audit), which other jobs on the machine disturb less.
#
# Uses from tools/bench: BENCH, LEDGERD, BUILD, TMP, SECONDS_PER, record,
# log, start_server, stop_server, proc_jiffies, HZ. Sets G_RESULT (JSON).
# Environment: BENCH_AUDIT_ACCESSES=200000 (the log's accesses),
# BENCH_AUDIT_SUBJECTS (default accesses / 4).

VERIFY="$BUILD/verifier/ledger-verify"

# g_verify_baseline: prints verify-baseline JSON plus its CPU seconds.
g_verify_baseline() {
  local secs=$1 out
  out=$(/usr/bin/time -f '%U %S' -o "$TMP/g.vtime" "$BENCH" verify-baseline --seconds "$secs" --threads 2)
  jq -c --arg t "$(cat "$TMP/g.vtime")" '. + {cpu_s: ($t | split(" ") | map(tonumber) | add)}
    | . + {cpu_us_per_verification: (if .verifications > 0 then .cpu_s * 1e6 / .verifications else null end)}' <<<"$out"
}

# g_audit VAR SERVER_PID|- ARGS...: one `ledger-verify audit --json`, timed;
# sets VAR to {entries, verified, seconds, entries_per_s, cpu_s,
# cpu_us_per_entry, server_cpu_us_per_entry, rss_kb}.
g_audit() {
  local var="$1" pid="$2"; shift 2
  local s0=0 s1=0 w0 w1 out
  record /usr/bin/time -f '%e %U %S %M' "$VERIFY" audit "$@" --json
  [ "$pid" != - ] && s0=$(proc_jiffies "$pid")
  w0=$(date +%s.%N)
  /usr/bin/time -f '%e %U %S %M' -o "$TMP/g.time" "$VERIFY" audit "$@" --json >"$TMP/g.audit.json" || true
  w1=$(date +%s.%N)
  [ "$pid" != - ] && s1=$(proc_jiffies "$pid")
  out=$(jq -c --arg t "$(tail -n 1 "$TMP/g.time")" --argjson sj "$((s1 - s0))" --argjson hz "$HZ" \
    --argjson wall "$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.3f", b - a }')" '
    ($t | split(" ") | map(tonumber)) as $x |
    {entries: .entries, verified: .verified, violations: (.violations | length), seconds: $wall,
     entries_per_s: (if $wall > 0 then (.entries / $wall | round) else null end),
     cpu_s: ($x[1] + $x[2]), rss_kb: $x[3],
     cpu_us_per_entry: (if .entries > 0 then (($x[1] + $x[2]) * 1e6 / .entries * 10 | round) / 10 else null end),
     server_cpu_us_per_entry: (if .entries > 0 then ($sj / $hz * 1e6 / .entries * 10 | round) / 10 else null end)}' \
    "$TMP/g.audit.json")
  printf -v "$var" '%s' "$out"
}

audit_figure() {
  local n=${BENCH_AUDIT_ACCESSES:-200000}
  local subjects=${BENCH_AUDIT_SUBJECTS:-$((n / 4 > 0 ? n / 4 : 1))}
  local d="$TMP/g" vsecs=$((SECONDS_PER < 5 ? SECONDS_PER : 5))
  log "g. building a ledger-mode log of $n signed accesses to $subjects subjects (library, no HTTP)"
  record "$BENCH" build-audit-log --data "$d" --accesses "$n" --subjects "$subjects" --checkpoint-at $((n / 4))
  G_BUILD=$("$BENCH" build-audit-log --data "$d" --accesses "$n" --subjects "$subjects" --checkpoint-at $((n / 4)))
  sync
  start_server ledgerd-g "$TMP/g.port" "$LEDGERD" --data "$d" --listen 127.0.0.1:0 --port-file "$TMP/g.port" \
    --max-skew 864000
  local port=$PORT pid=$SERVER_PID
  log "   bare Ed25519 verification loop, 2 threads, ${vsecs} s"
  record "$BENCH" verify-baseline --seconds "$vsecs" --threads 2
  G_VERIFY0=$(g_verify_baseline "$vsecs")
  log "   audit online (ledgerd)"
  g_audit G_ONLINE "$pid" --log "http://127.0.0.1:$port" --log-key "@$d/log.vkey"
  log "   audit online of the first quarter (--checkpoint), for the RSS growth"
  g_audit G_SMALL - --log "http://127.0.0.1:$port" --log-key "@$d/log.vkey" --checkpoint "$d/checkpoint.small"
  log "   mirror, then the audit offline"
  record "$VERIFY" mirror --log "http://127.0.0.1:$port" --log-key "@$d/log.vkey" --out "$TMP/g.mirror"
  "$VERIFY" mirror --log "http://127.0.0.1:$port" --log-key "@$d/log.vkey" --out "$TMP/g.mirror" >/dev/null
  stop_server "$pid"
  g_audit G_OFFLINE - --log "$TMP/g.mirror" --log-key "@$d/log.vkey"
  log "   bare Ed25519 verification loop again"
  G_VERIFY1=$(g_verify_baseline "$vsecs")
  G_RESULT=$(jq -n --argjson build "$G_BUILD" --argjson v0 "$G_VERIFY0" --argjson v1 "$G_VERIFY1" \
    --argjson on "$G_ONLINE" --argjson small "$G_SMALL" --argjson off "$G_OFFLINE" '
    def r(x): (x * 1000 | round) / 1000;
    (($v0.per_s + $v1.per_s) / 2) as $vps |
    (($v0.cpu_us_per_verification + $v1.cpu_us_per_verification) / 2) as $vcpu |
    {accesses: $build.accesses, subjects: $build.subjects, tree_size: $build.tree_size,
     verify_per_s_2_threads: ($vps | round), verify_cpu_us: r($vcpu),
     online: ($on + {ratio: (if $vps > 0 then r($on.entries_per_s / $vps) else null end),
                     cpu_ratio: r($vcpu / ($on.cpu_us_per_entry + $on.server_cpu_us_per_entry))}),
     offline: ($off + {ratio: (if $vps > 0 then r($off.entries_per_s / $vps) else null end),
                       cpu_ratio: r($vcpu / $off.cpu_us_per_entry)}),
     rss_bytes_per_entry: (if $on.entries > 0 then ($on.rss_kb * 1024 / $on.entries | round) else null end),
     rss_growth_bytes_per_entry: (if $on.entries > $small.entries then
        ((($on.rss_kb - $small.rss_kb) * 1024 / ($on.entries - $small.entries)) | round) else null end),
     small: $small, build: $build, baseline_runs: [$v0, $v1],
     pass: ($on.verified and $off.verified and $vps > 0 and $on.entries_per_s / $vps >= 0.8)}')
}
