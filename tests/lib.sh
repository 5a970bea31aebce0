# tests/lib.sh: helpers shared by the shell end-to-end tests (sourced, not
# run). A script starts with
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   lib_setup NAME          # WORK (also T): a fresh directory, removed at exit
#                           # (kept with KEEP_WORK=1); PIDS: killed at exit
#
# and ends with `lib_finish NAME`, which prints the tally and sets the exit
# status. In between:
#
#   pass DESC / fail DESC [DETAIL]     count a check
#   check DESC CMD...                  pass if CMD succeeds; its output (or
#                                      else the last run's) is shown if not
#   run CMD...                         run CMD (programs: 120 s limit) without tripping
#                                      set -e: exit status in RC, stdout in OUT
#                                      (and $WORK/out), stderr in ERR
#   failed DESC                        fail, showing the last run's RC/OUT/ERR
#   expect_rc DESC STATUS              the last run exited with STATUS
#   contains TEXT PART                 TEXT contains PART
#   wait_port FILE PID                 the port a server wrote to FILE once
#                                      listening (fails if PID exits first)
#   stop PID                           SIGTERM and reap one process
#   json_string                        stdin as a JSON string literal
#   find_nginx NAME                    NGINX: nginx's path (exit 77 if absent)
#   start_nginx ROOT                   nginx serving ROOT as a tiles mirror:
#                                      NGINX_URL, NGINX_PID
#
# A script may define lib_on_exit (called first at exit, e.g. to print logs).

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PASSED=0
FAILED=0
RC=0
OUT=""
ERR=""
PIDS=()

# absolute PATH: PATH made absolute (tests change directory).
absolute() { case "$1" in /*) echo "$1" ;; *) echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")" ;; esac; }

lib_cleanup() {
  local pid
  if declare -F lib_on_exit >/dev/null; then lib_on_exit || true; fi
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ ${KEEP_WORK:-0} == 1 ]]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}

# lib_setup NAME: makes WORK (and its alias T) and arranges the cleanup.
lib_setup() {
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  T=$WORK
  trap lib_cleanup EXIT
}

# lib_finish NAME: prints the tally; the exit status is 0 only if no check
# failed.
lib_finish() {
  echo
  echo "$1: $PASSED passed, $FAILED failed"
  [[ $FAILED -eq 0 ]]
}

pass() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() {
  FAILED=$((FAILED + 1))
  echo "FAIL $1"
  [[ $# -lt 2 ]] || sed 's/^/     /' <<<"$2" | head -40
}

check() {
  local desc=$1 rc=0
  shift
  # Run in this shell (a check may set variables); output kept for failures.
  "$@" >"$WORK/check.out" 2>&1 || rc=$?
  if [[ $rc -eq 0 ]]; then
    pass "$desc"
  elif [[ -s $WORK/check.out ]]; then
    fail "$desc" "$(head -c 4000 "$WORK/check.out")"
  else
    # A condition on the last run's output (contains "$OUT" ...): show it.
    fail "$desc" "$(head -c 1500 <<<"$OUT")"
  fi
}

lib_run() {
  RC=0
  if declare -F "$1" >/dev/null; then
    "$@" >"$WORK/out" 2>"$WORK/err" || RC=$?
  else
    timeout 120 "$@" >"$WORK/out" 2>"$WORK/err" || RC=$?
  fi
  OUT=$(cat "$WORK/out")
  ERR=$(cat "$WORK/err")
}
run() { lib_run "$@"; }

failed() {
  fail "$1" "$(printf 'exit status %s\nstdout: %s\nstderr: %s' "$RC" "$(head -c 3000 <<<"$OUT")" \
    "$(head -c 2000 <<<"$ERR")")"
}

expect_rc() { if [[ $RC -eq $2 ]]; then pass "$1"; else failed "$1 (want exit $2)"; fi; }

contains() { case "$1" in *"$2"*) return 0 ;; *) return 1 ;; esac; }

wait_port() {
  local file="$1" pid="$2" i
  for i in $(seq 1 300); do
    if [[ -s $file ]]; then cat "$file"; return 0; fi
    kill -0 "$pid" 2>/dev/null || { echo "server $pid exited before listening" >&2; return 1; }
    sleep 0.05
  done
  echo "timed out waiting for $file" >&2
  return 1
}

stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

json_string() {
  printf '"'
  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | awk '{ printf "%s\\n", $0 }'
  printf '"'
}

# find_nginx NAME: sets NGINX to Debian's nginx; without it, says that NAME
# is skipped and exits 77.
find_nginx() {
  NGINX=$(command -v nginx || true)
  [[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
  if [[ -z $NGINX ]]; then
    echo "$1: SKIPPED: nginx is not installed (apt-get install -y nginx-light, or tools/deps.sh)"
    exit 77
  fi
}

# start_nginx ROOT: $NGINX (find_nginx) serving ROOT with the documented
# server block, tools/nginx/ledger-tiles.conf, its LISTEN and ROOT lines
# pointed at a free loopback port and ROOT, inside a minimal top-level
# config with every path under $WORK/nginx (so no root privileges are
# needed). Counts checks of the config; sets NGINX_URL and NGINX_PID (its
# output: $WORK/nginx.log); exits 1 if nginx does not answer in ~10 s.
start_nginx() {
  local root=$1 ng="$WORK/nginx" port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$ng/tmp"
  sed -e "s|^\( *\)listen 8080; .*|\1listen 127.0.0.1:$port;|" -e "s|^\( *\)root /srv/ledger-mirror; .*|\1root $root;|" \
    "$LIB_DIR/../tools/nginx/ledger-tiles.conf" >"$ng/ledger-tiles.conf"
  check "the config's LISTEN line was pointed at the test port" grep -q "listen 127.0.0.1:$port;" "$ng/ledger-tiles.conf"
  check "the config's ROOT line was pointed at the served directory" grep -q "root $root;" "$ng/ledger-tiles.conf"
  cat >"$ng/nginx.conf" <<EOF
worker_processes 1;
events { worker_connections 256; }
http {
    access_log $ng/access.log;
    client_body_temp_path $ng/tmp/body;
    proxy_temp_path $ng/tmp/proxy;
    fastcgi_temp_path $ng/tmp/fastcgi;
    uwsgi_temp_path $ng/tmp/uwsgi;
    scgi_temp_path $ng/tmp/scgi;
    include $ng/ledger-tiles.conf;
}
EOF
  run "$NGINX" -t -p "$ng" -c "$ng/nginx.conf" -g "pid $ng/nginx.pid; error_log stderr;"
  expect_rc "nginx accepts the config (nginx -t)" 0
  "$NGINX" -p "$ng" -c "$ng/nginx.conf" -g "daemon off; pid $ng/nginx.pid; error_log stderr;" >"$WORK/nginx.log" 2>&1 &
  NGINX_PID=$!
  NGINX_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "$NGINX_URL/checkpoint" && break
    kill -0 "$NGINX_PID" 2>/dev/null || break
    sleep 0.1
  done
  if ! curl -s -o /dev/null "$NGINX_URL/checkpoint"; then
    echo "nginx did not start:" >&2
    cat "$WORK/nginx.log" >&2
    exit 1
  fi
}
