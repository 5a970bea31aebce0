# tools/bench --scale (sourced by tools/bench after its set-up): the scale
# figures of issue #7, each with its baseline from the same run:
#   S1 ledger-bench scale: an N-entry log (BENCH_SCALE_ENTRIES, 10,000,000)
#      built through the library; disk bytes per entry beyond the entry
#      (target <= 80), append CPU per entry at N vs at 10k (target: rate
#      within 20%, i.e. CPU ratio <= 1.25), the library's own inclusion
#      proof CPU at N vs 10k (reported), Store::Open time (target < 1 s)
#   S2 ledgerd start-up on the N-entry log: until its port file (< 1 s)
#   S3 ledgerd serving inclusion proofs on the N-entry log vs on a 10k-entry
#      log: latency on one connection and CPU per request at 64 connections
#      (logarithmic: ratio <= log2 N / log2 10k), peak RSS (must not grow
#      linearly with the log)
#   S4 ledger-verify inclusion: peak RSS against the N-entry log vs 10k
#   S5 tile GETs through nginx serving ledgerd --tiles-dir (BENCH_LOG_ENTRIES
#      log) vs the same GETs from ledgerd (ratio; skipped without nginx)
#   S6 ledger-verify audit peak RSS per entry: audits of two honest
#      ledger-fixture logs (BENCH_AUDIT_SMALL, BENCH_AUDIT_LARGE accesses)
# Writes build/bench/scale.json and the scale section of BENCHMARKS.md.

SCALE_N=${BENCH_SCALE_ENTRIES:-10000000}
AUDIT_SMALL=${BENCH_AUDIT_SMALL:-20000}
AUDIT_LARGE=${BENCH_AUDIT_LARGE:-100000}
VERIFY="$BUILD/verifier/ledger-verify"
FIXTURE="$BUILD/tests/fixture/ledger-fixture"

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# S1 -------------------------------------------------------------------------
log "S1. building a $SCALE_N-entry log through the library (minutes)"
record "$BENCH" scale --data "$TMP/big" --entries "$SCALE_N" --marks "10000,1000000,$SCALE_N"
"$BENCH" scale --data "$TMP/big" --entries "$SCALE_N" --marks "10000,1000000,$SCALE_N" >"$TMP/scale.jsonl"
S1_SUMMARY=$(tail -1 "$TMP/scale.jsonl")
S1_MARKS=$(head -n -1 "$TMP/scale.jsonl" | jq -s -c .)
record "$BENCH" build-log --data "$TMP/small" --entries 10000 --entry-size 256 --batch 4096
"$BENCH" build-log --data "$TMP/small" --entries 10000 --entry-size 256 --batch 4096 >/dev/null
sync

# S2/S3 ----------------------------------------------------------------------
# rss_under_load NAME DIR SIZE: ledgerd on DIR under inclusion-proof load;
# sets RSS_JSON {startup_s, hwm_kb, rss_anon_kb, rss_file_kb, rps}, and
# VKEY_URL and LAST_PID to the server (still running).
rss_under_load() {
  local name=$1 dir=$2 size=$3 t0 t1 pid
  "$BENCH" gen-paths --kind inclusion --size "$size" --count 100000 --out "$TMP/$name.paths"
  t0=$(date +%s.%N)
  start_server "$name" "$TMP/$name.port" "$LEDGERD" --data "$dir" --listen 127.0.0.1:0 --port-file "$TMP/$name.port" --entries opaque
  t1=$(date +%s.%N)
  pid=$SERVER_PID
  measure L "$pid" --url "http://127.0.0.1:$PORT" --paths "$TMP/$name.paths" --connections 64
  # One connection: a proof's latency as a client sees it, without queueing
  # behind other requests.
  measure L1 "$pid" --url "http://127.0.0.1:$PORT" --paths "$TMP/$name.paths" --connections 1
  RSS_JSON=$(jq -n -c --argjson l "$L" --argjson l1 "$L1" --argjson s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" \
    --argjson hwm "$(status_kb "$pid" VmHWM)" --argjson anon "$(status_kb "$pid" RssAnon)" \
    --argjson file "$(status_kb "$pid" RssFile)" \
    '{startup_s: $s, hwm_kb: $hwm, rss_anon_kb: $anon, rss_file_kb: $file, rps: $l.rps, server_cpu_us: $l.server_cpu_us_per_req,
      one_connection: {rps: $l1.rps, p50_ms: $l1.p50_ms, p99_ms: $l1.p99_ms, server_cpu_us: $l1.server_cpu_us_per_req}}')
  VKEY_URL="http://127.0.0.1:$PORT"
  LAST_PID=$pid
}
log "S2/S3. ledgerd start-up and RSS serving inclusion proofs: 10k-entry log, then $SCALE_N"
rss_under_load small "$TMP/small" 10000
S3_SMALL=$RSS_JSON
# S4 while it runs: one inclusion check by ledger-verify.
verify_rss() {  # verify_rss URL DIR: peak RSS (KB) of ledger-verify inclusion of the last entry
  local url=$1 dir=$2 size leaf
  size=$(curl -sf "$url/healthz" | jq -r .size)
  leaf=$(curl -sf "$url/v1/entries/$((size - 1))" | jq -r .leaf_hash)
  /usr/bin/time -f %M -o "$TMP/verify.rss" "$VERIFY" inclusion --log "$url" --log-key "@$dir/log.vkey" --index $((size - 1)) \
    --leaf-hash "$leaf" >/dev/null
  cat "$TMP/verify.rss"
}
record "$VERIFY" inclusion --log URL --log-key @DIR/log.vkey --index '<size-1>' --leaf-hash '<its leaf hash>'
S4_SMALL=$(verify_rss "$VKEY_URL" "$TMP/small")
stop_server "$LAST_PID"
rss_under_load big "$TMP/big" "$SCALE_N"
S3_BIG=$RSS_JSON
S4_BIG=$(verify_rss "$VKEY_URL" "$TMP/big")
stop_server "$LAST_PID"
rm -rf "$TMP/big"

# S5 -------------------------------------------------------------------------
NGINX_BIN=$(command -v nginx || true)
[ -z "$NGINX_BIN" ] && [ -x /usr/sbin/nginx ] && NGINX_BIN=/usr/sbin/nginx
S5='null'
if [ -n "$NGINX_BIN" ]; then
  log "S5. tile GETs: nginx serving ledgerd --tiles-dir vs ledgerd ($LOG_ENTRIES entries)"
  chmod 755 "$TMP"
  record "$BENCH" build-log --data "$TMP/t" --entries "$LOG_ENTRIES" --entry-size 256 --batch 65536
  "$BENCH" build-log --data "$TMP/t" --entries "$LOG_ENTRIES" --entry-size 256 --batch 65536 >/dev/null
  t0=$(date +%s.%N)
  start_server tiles "$TMP/t.port" "$LEDGERD" --data "$TMP/t" --listen 127.0.0.1:0 --port-file "$TMP/t.port" --entries opaque \
    --tiles-dir "$TMP/www"
  T_PORT=$PORT; T_PID=$SERVER_PID
  want=$(curl -sf "http://127.0.0.1:$T_PORT/checkpoint")
  for _ in $(seq 1 3000); do
    [ -f "$TMP/www/checkpoint" ] && [ "$(cat "$TMP/www/checkpoint")" = "$want" ] && break
    sleep 0.1
  done
  EXPORT_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
  chmod -R a+rX "$TMP/www"
  NPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$TMP/ng/tmp"
  sed -e "s|^\( *\)listen 8080; .*|\1listen 127.0.0.1:$NPORT;|" -e "s|^\( *\)root /srv/ledger-mirror; .*|\1root $TMP/www;|" \
    "$LEDGER_ROOT/tools/nginx/ledger-tiles.conf" >"$TMP/ng/site.conf"
  cat >"$TMP/ng/nginx.conf" <<NGX
worker_processes 2;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    open_file_cache max=10000;
    client_body_temp_path $TMP/ng/tmp/body;
    proxy_temp_path $TMP/ng/tmp/proxy;
    fastcgi_temp_path $TMP/ng/tmp/fastcgi;
    uwsgi_temp_path $TMP/ng/tmp/uwsgi;
    scgi_temp_path $TMP/ng/tmp/scgi;
    include $TMP/ng/site.conf;
}
NGX
  start_server nginx "$TMP/ng/nginx.port" bash -c "echo $NPORT >$TMP/ng/nginx.port; exec $NGINX_BIN -p $TMP/ng -c $TMP/ng/nginx.conf -g 'daemon off; pid $TMP/ng/nginx.pid; error_log stderr;'"
  N_PID=$SERVER_PID
  sleep 0.5
  "$BENCH" gen-paths --kind tile --size "$LOG_ENTRIES" --count 100000 --out "$TMP/t.paths"
  measure S5_LEDGERD "$T_PID" --url "http://127.0.0.1:$T_PORT" --paths "$TMP/t.paths" --connections 64
  measure S5_NGINX "$N_PID" --url "http://127.0.0.1:$NPORT" --paths "$TMP/t.paths" --connections 64
  stop_server "$N_PID"
  stop_server "$T_PID"
  S5=$(jq -n -c --argjson l "$S5_LEDGERD" --argjson n "$S5_NGINX" --argjson e "$EXPORT_S" \
    '{ledgerd: $l, nginx: $n, export_s: $e}')
  rm -rf "$TMP/t" "$TMP/www"
else
  log "S5 skipped: nginx is not installed (tools/deps.sh installs nginx-light)"
fi

# S6 -------------------------------------------------------------------------
S6='null'
if [ -x "$FIXTURE" ]; then
  audit_rss() {  # audit_rss ACCESSES: {entries, rss_kb, seconds}
    local a=$1 d="$TMP/audit$1" t0 t1
    record "$FIXTURE" --data "$d" --scenario honest --accesses "$a"
    "$FIXTURE" --data "$d" --scenario honest --accesses "$a" >/dev/null
    start_server "audit$a" "$d.port" "$LEDGERD" --data "$d" --listen 127.0.0.1:0 --port-file "$d.port" --entries opaque
    record /usr/bin/time -f %M "$VERIFY" audit --log URL --log-key "@$d/log.vkey" --json
    t0=$(date +%s.%N)
    /usr/bin/time -f %M -o "$d.rss" "$VERIFY" audit --log "http://127.0.0.1:$PORT" --log-key "@$d/log.vkey" --json >"$d.json" || true
    t1=$(date +%s.%N)
    stop_server "$SERVER_PID"
    jq -n -c --argjson e "$(jq .entries "$d.json")" --argjson r "$(cat "$d.rss")" \
      --argjson s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" '{entries: $e, rss_kb: $r, seconds: $s}'
    rm -rf "$d"
  }
  log "S6. ledger-verify audit RSS: $AUDIT_SMALL and $AUDIT_LARGE accesses"
  A1=$(audit_rss "$AUDIT_SMALL")
  A2=$(audit_rss "$AUDIT_LARGE")
  S6=$(jq -n -c --argjson a "$A1" --argjson b "$A2" '{small: $a, large: $b,
    bytes_per_entry: (if $b.entries > $a.entries then (($b.rss_kb - $a.rss_kb) * 1024 / ($b.entries - $a.entries) * 10 | round) / 10 else null end)}')
else
  log "S6 skipped: $FIXTURE not built"
fi

# Results ----------------------------------------------------------------------
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
COMMIT=$(git -C "$LEDGER_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$LEDGER_ROOT" status --porcelain 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
CPU_MODEL=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
SCALE_RESULTS=$(jq -n --arg date "$DATE" --arg commit "$COMMIT$DIRTY" --arg cpu "$CPU_MODEL" --argjson nproc "$(nproc)" \
  --arg la0 "$LOADAVG_BEFORE" --arg la1 "$(cut -d' ' -f1-3 /proc/loadavg)" --argjson idle "$IDLE_BEFORE" \
  --argjson n "$SCALE_N" --argjson s1 "$S1_SUMMARY" --argjson marks "$S1_MARKS" \
  --argjson s3s "$S3_SMALL" --argjson s3b "$S3_BIG" --argjson s4s "$S4_SMALL" --argjson s4b "$S4_BIG" \
  --argjson s5 "$S5" --argjson s6 "$S6" '
  def r(x): (x * 1000 | round) / 1000;
  ($marks[0]) as $m0 | ($marks[-1]) as $m1 |
  ((($n | log) / (2 | log)) / (($m0.mark | log) / (2 | log))) as $logratio |
  {date: $date, commit: $commit, machine: {cpu: $cpu, nproc: $nproc, loadavg_before: $la0, loadavg_after: $la1, idle_pct_before: $idle},
   entries: $n, marks: $marks, summary: $s1, ledgerd_small: $s3s, ledgerd_big: $s3b,
   verify_rss_kb: {small: $s4s, big: $s4b}, tiles: $s5, audit: $s6,
   figures: ([
     {figure: "S1. disk bytes per entry beyond the entry, \($n) entries", value: $m1.disk.overhead_per_entry_used, unit: "B",
      baseline: $m0.disk.overhead_per_entry_used, baseline_name: "at \($m0.mark)", target: "<= 80", pass: ($m1.disk.overhead_per_entry_used <= 80)},
     {figure: "S1. append CPU per entry, \($n) vs \($m0.mark)", value: $m1.cpu_us_per_entry, unit: "us", baseline: $m0.cpu_us_per_entry,
      baseline_name: "at \($m0.mark)", ratio: r($m1.cpu_us_per_entry / $m0.cpu_us_per_entry), target: "ratio <= 1.25 (rate within 20%)",
      pass: ($m1.cpu_us_per_entry / $m0.cpu_us_per_entry <= 1.25)},
     {figure: "S1. append rate (wall), \($n) vs \($m0.mark)", value: $m1.append_rate, unit: "entries/s", baseline: $m0.append_rate,
      baseline_name: "at \($m0.mark)", ratio: r($m1.append_rate / $m0.append_rate), target: "(reported: wall time follows the shared machine)", pass: null},
     {figure: "S1. inclusion proof computed by the library alone (no node cache; CPU), \($n) vs \($m0.mark)", value: $m1.proofs.inclusion_cpu_us, unit: "us", baseline: $m0.proofs.inclusion_cpu_us,
      baseline_name: "at \($m0.mark)", ratio: r($m1.proofs.inclusion_cpu_us / $m0.proofs.inclusion_cpu_us),
      target: "(reported: log2 ratio \($logratio | . * 100 | round / 100); the rest is memory, see the hand-written section)", pass: null},
     {figure: "S1. Store::Open of the \($n)-entry log", value: $s1.open_s, unit: "s", target: "< 1 s", pass: ($s1.open_s < 1)},
     {figure: "S2. ledgerd start-up (to listening), \($n) entries", value: $s3b.startup_s, unit: "s", baseline: $s3s.startup_s,
      baseline_name: "10k entries", target: "< 1 s", pass: ($s3b.startup_s < 1)},
     {figure: "S3. ledgerd peak RSS serving proofs, \($n) vs 10k entries", value: ($s3b.hwm_kb / 1024 | round), unit: "MiB",
      baseline: ($s3s.hwm_kb / 1024 | round), baseline_name: "10k entries", ratio: r($s3b.hwm_kb / $s3s.hwm_kb),
      target: "not linear in the log (anon RSS \($s3b.rss_anon_kb / 1024 | round) vs \($s3s.rss_anon_kb / 1024 | round) MiB; the rest is mapped LMDB pages)", pass: null},
     {figure: "S3. inclusion proof latency from ledgerd, 1 connection (p50), \($n) vs 10k entries", value: ($s3b.one_connection.p50_ms * 1000), unit: "us",
      baseline: ($s3s.one_connection.p50_ms * 1000), baseline_name: "10k entries; p99 \($s3b.one_connection.p99_ms * 1000 | round) vs \($s3s.one_connection.p99_ms * 1000 | round) us",
      ratio: r($s3b.one_connection.p50_ms / $s3s.one_connection.p50_ms),
      target: "logarithmic: ratio <= log2 ratio \($logratio | . * 100 | round / 100)", pass: ($s3b.one_connection.p50_ms / $s3s.one_connection.p50_ms <= $logratio)},
     {figure: "S3. ledgerd CPU per inclusion proof request (64 connections), \($n) vs 10k entries", value: $s3b.server_cpu_us, unit: "us",
      baseline: $s3s.server_cpu_us, baseline_name: "10k entries", ratio: r($s3b.server_cpu_us / $s3s.server_cpu_us),
      target: "logarithmic: ratio <= log2 ratio \($logratio | . * 100 | round / 100)", pass: ($s3b.server_cpu_us / $s3s.server_cpu_us <= $logratio)},
     {figure: "S4. ledger-verify inclusion peak RSS, \($n) vs 10k entries", value: ($s4b / 1024 | round), unit: "MiB",
      baseline: ($s4s / 1024 | round), baseline_name: "10k entries", ratio: r($s4b / $s4s), target: "not linear in the log", pass: ($s4b / $s4s < 2)}
   ]
   + (if $s5 == null then [] else [
     {figure: "S5. level-0 tile GETs: nginx serving --tiles-dir vs ledgerd (64 conns)", value: $s5.nginx.rps, unit: "req/s",
      baseline: $s5.ledgerd.rps, baseline_name: "ledgerd", ratio: r($s5.nginx.rps / $s5.ledgerd.rps), target: "(reported)", pass: null}] end)
   + (if $s6 == null then [] else [
     {figure: "S6. ledger-verify audit peak RSS growth per entry", value: $s6.bytes_per_entry, unit: "B",
      baseline: ($s6.small.rss_kb / 1024 | round), baseline_name: "MiB at \($s6.small.entries) entries; \($s6.large.rss_kb / 1024 | round) MiB at \($s6.large.entries)",
      target: "(reported)", pass: null}] end))
  }')
echo "$SCALE_RESULTS" >"$OUT/scale.json"
SCALE_TABLE=$(echo "$SCALE_RESULTS" | jq -r '
  def fmt(x): if x == null then "–" elif (x | type) == "number" then
      (if x >= 100 then (x | round | tostring) else ((x * 100 | round) / 100 | tostring) end) else (x | tostring) end;
  "| figure | value | baseline | ratio | target | result |",
  "|---|---:|---:|---:|---|---|",
  (.figures[] | "| \(.figure) | \(fmt(.value)) \(.unit) | \(if .baseline == null then "–" else "\(fmt(.baseline)) (\(.baseline_name))" end) | \(fmt(.ratio)) | \(.target) | \(if .pass == null then "–" elif .pass then "PASS" else "FAIL" end) |")')
SCALE_DETAIL=$(echo "$SCALE_RESULTS" | jq -r '
  "Per mark (ledger-bench scale; bytes per entry per LMDB database, pages in use × 4096 / entries):",
  "",
  "| mark | append rate | CPU µs/entry | merge s in window | overhead B/entry | bundles + entries dbs | tree db | leafruns db | runs | inclusion CPU µs | consistency CPU µs |",
  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  (.marks[] | "| \(.mark) | \(.append_rate) | \(.cpu_us_per_entry) | \(.merge_s) | \(.disk.overhead_per_entry_used) | \((.disk.dbs.bundles.bytes_per_entry + .disk.dbs.entries.bytes_per_entry) * 1000 | round / 1000) | \(.disk.dbs.tree.bytes_per_entry) | \(.disk.dbs.leafruns.bytes_per_entry) | \(.disk.leaf_index_runs) | \(.proofs.inclusion_cpu_us) | \(.proofs.consistency_cpu_us) |")')
echo
echo "$SCALE_TABLE"
echo
echo "results: $OUT/scale.json"
if [ "${BENCH_NO_MD:-}" != 1 ]; then
  MD="$LEDGER_ROOT/BENCHMARKS.md"
  SECTION=$(cat <<MDEOF
<!-- tools/bench --scale: begin generated section (replaced by every --scale run) -->
## Latest scale run (\`tools/bench --scale\`): $DATE

- machine: $(nproc) cores ($CPU_MODEL), $(uname -sr); $IDLE_BEFORE% idle just before the run; load average before: $LOADAVG_BEFORE
- code: $COMMIT$DIRTY; entries of 256 random bytes (the other figures' entry size), 4096 per durable commit

$SCALE_TABLE

$SCALE_DETAIL

Commands (\$TMP is a fresh temporary directory):

\`\`\`
$COMMANDS\`\`\`
<!-- tools/bench --scale: end generated section -->
MDEOF
)
  printf '%s\n' "$SECTION" >"$TMP/scale-section.md"
  if grep -q '<!-- tools/bench --scale: begin' "$MD"; then
    awk -v sectionfile="$TMP/scale-section.md" '
      /<!-- tools\/bench --scale: begin/ { while ((getline l < sectionfile) > 0) print l; skip = 1; next }
      /<!-- tools\/bench --scale: end/ { skip = 0; next }
      !skip { print }' "$MD" >"$MD.tmp"
  else
    { cat "$MD"; echo; cat "$TMP/scale-section.md"; } >"$MD.tmp"
  fi
  mv "$MD.tmp" "$MD"
  echo "updated $MD"
fi
