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
#
# A script may define lib_on_exit (called first at exit, e.g. to print logs).

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
