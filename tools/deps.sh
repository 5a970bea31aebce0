# Sourced by tools/run, tools/test and tools/bench: installs the Debian
# packages the build needs when any is missing (as root, or through sudo).
LEDGER_PACKAGES="libsodium-dev liblmdb-dev libcpp-httplib-dev nlohmann-json3-dev catch2 cmake g++ make pkg-config nginx-light chromium chromium-driver python3 libssl-dev openssl"
# The sanitizer and fuzzing builds (.ci/run, tools/fuzz): clang, its
# sanitizer and libFuzzer runtimes, and llvm-symbolizer for stack traces.
LEDGER_SANITIZER_PACKAGES="clang libclang-rt-14-dev llvm-14"

ledger_install_deps() {
  local missing=""
  for p in $LEDGER_PACKAGES "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  echo "installing:$missing" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# ledger_build DIR [cmake args...]: configure (Release) and build everything.
ledger_build() {
  local dir="$1"; shift
  cmake -S "$LEDGER_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}
