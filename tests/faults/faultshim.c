/* faultshim: an LD_PRELOAD library that injects storage and clock faults
 * into ledgerd for the fault tests (tests/faults/) and tools/faults.
 *
 * Disk errors. LEDGER_FAULT_IO_FILE=PATH arms it: while PATH exists, calls
 * on a file descriptor of an LMDB data file (a path ending in "/data.mdb")
 * fail. PATH holds "<mode> [<errno name>]":
 *   write  pwrite, pwrite64, write, writev, pwritev of data pages (LMDB
 *          page flush; offsets from the third page on)
 *   meta   pwrite of the two meta pages (offset below 2 pages), the
 *          commit's last write, which LMDB treats as fatal (MDB_PANIC)
 *   sync   fsync, fdatasync, msync, sync_file_range (the fsync of the
 *          data pages before the meta page is written)
 *   all    every one of the above
 * errno is EIO (default), ENOSPC or EDQUOT. Each injected failure is
 * reported on stderr as "faultshim: <call> ... -> <errno>".
 *
 * Clock. LEDGER_FAULT_CLOCK_FILE=PATH: PATH holds a signed number of
 * seconds added to every CLOCK_REALTIME reading (clock_gettime with
 * CLOCK_REALTIME or CLOCK_REALTIME_COARSE, gettimeofday, time); re-read at
 * most every 10 ms, so writing a new number jumps the clock of the running
 * process. A missing or empty file means offset 0. Monotonic clocks are
 * untouched, as they are on a real machine whose wall clock is stepped.
 *
 * Thread-safe: no locks; the cached offset is an atomic.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { kWrite = 1, kMeta = 2, kSync = 4 };

/* Real functions, resolved lazily through RTLD_NEXT. */
#define REAL(name)                                                               \
  static __typeof__(name)* real_##name;                                          \
  if (!real_##name) real_##name = (__typeof__(name)*)dlsym(RTLD_NEXT, #name);   \
  if (!real_##name) abort();

static void shim_log(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
  /* Straight to the kernel: write() itself is interposed. */
  (void)syscall(SYS_write, 2, buf, (size_t)n);
}

/* armed_mode returns the modes armed now (0 if none) and the errno to use. */
static int armed_mode(int* err) {
  const char* path = getenv("LEDGER_FAULT_IO_FILE");
  if (!path || !*path) return 0;
  int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[64] = {0};
  long n = syscall(SYS_read, fd, buf, sizeof buf - 1);
  syscall(SYS_close, fd);
  if (n < 0) n = 0;
  buf[n] = 0;
  int mode = 0;
  if (strncmp(buf, "write", 5) == 0) mode = kWrite;
  else if (strncmp(buf, "meta", 4) == 0) mode = kMeta;
  else if (strncmp(buf, "sync", 4) == 0) mode = kSync;
  else if (strncmp(buf, "all", 3) == 0) mode = kWrite | kMeta | kSync;
  else return 0;
  *err = EIO;
  if (strstr(buf, "ENOSPC")) *err = ENOSPC;
  else if (strstr(buf, "EDQUOT")) *err = EDQUOT;
  return mode;
}

/* is_data_file reports whether fd refers to an LMDB data file. */
static int is_data_file(int fd) {
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  long n = syscall(SYS_readlinkat, AT_FDCWD, link, target, sizeof target - 1);
  if (n <= 0) return 0;
  target[n] = 0;
  size_t len = (size_t)n;
  return len >= 9 && strcmp(target + len - 9, "/data.mdb") == 0;
}

static const char* errname(int e) { return e == ENOSPC ? "ENOSPC" : e == EDQUOT ? "EDQUOT" : "EIO"; }

/* should_fail decides one call: kind is kWrite/kSync, or kWrite with an
 * offset (meta pages are the first two pages of the file). */
static int should_fail(int kind, int fd, long long offset, const char* call) {
  int err = 0;
  int mode = armed_mode(&err);
  if (!mode || !is_data_file(fd)) return 0;
  int want = kind;
  if (kind == kWrite) {
    long page = sysconf(_SC_PAGESIZE);
    want = offset >= 0 && offset < 2 * page ? kMeta : kWrite;
  }
  if (!(mode & want)) return 0;
  shim_log("faultshim: %s(fd %d, offset %lld) on data.mdb -> %s\n", call, fd, offset, errname(err));
  errno = err;
  return 1;
}

static long long current_offset(int fd) { return (long long)syscall(SYS_lseek, fd, 0, SEEK_CUR); }

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  REAL(pwrite);
  if (should_fail(kWrite, fd, (long long)off, "pwrite")) return -1;
  return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
  REAL(pwrite64);
  if (should_fail(kWrite, fd, (long long)off, "pwrite64")) return -1;
  return real_pwrite64(fd, buf, n, off);
}

ssize_t write(int fd, const void* buf, size_t n) {
  REAL(write);
  if (fd > 2 && should_fail(kWrite, fd, current_offset(fd), "write")) return -1;
  return real_write(fd, buf, n);
}

ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  REAL(writev);
  if (fd > 2 && should_fail(kWrite, fd, current_offset(fd), "writev")) return -1;
  return real_writev(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec* iov, int cnt, off_t off) {
  REAL(pwritev);
  if (should_fail(kWrite, fd, (long long)off, "pwritev")) return -1;
  return real_pwritev(fd, iov, cnt, off);
}

int fsync(int fd) {
  REAL(fsync);
  if (should_fail(kSync, fd, -1, "fsync")) return -1;
  return real_fsync(fd);
}

int fdatasync(int fd) {
  REAL(fdatasync);
  if (should_fail(kSync, fd, -1, "fdatasync")) return -1;
  return real_fdatasync(fd);
}

int sync_file_range(int fd, off_t off, off_t n, unsigned int flags) {
  REAL(sync_file_range);
  if (should_fail(kSync, fd, -1, "sync_file_range")) return -1;
  return real_sync_file_range(fd, off, n, flags);
}

int msync(void* addr, size_t len, int flags) {
  REAL(msync);
  /* msync has no fd; LMDB only uses it with MDB_WRITEMAP. Fail it whenever
   * sync faults are armed. */
  int err = 0;
  if (armed_mode(&err) & kSync) {
    shim_log("faultshim: msync -> %s\n", errname(err));
    errno = err;
    return -1;
  }
  return real_msync(addr, len, flags);
}

/* A sanitized executable (clang links ASan/TSan statically) defines its own
 * pwrite, clock_gettime, ... interceptors, which come before any preloaded
 * library: then this shim is never called. Say so, so that the fault tests
 * can skip instead of waiting for a fault that cannot happen. */
__attribute__((constructor)) static void faultshim_check(void) {
  void* p = dlsym(RTLD_DEFAULT, "pwrite");
  void* c = dlsym(RTLD_DEFAULT, "clock_gettime");
  if (p != (void*)&pwrite || c != (void*)&clock_gettime)
    shim_log("faultshim: not interposed (the executable defines its own pwrite/clock_gettime)\n");
  else
    shim_log("faultshim: interposed\n");
}

/* ---- clock ---- */

static int64_t clock_offset(void) {
  static int64_t cached = 0;
  static int64_t next_read_ns = 0;  /* CLOCK_MONOTONIC ns of the next re-read */
  const char* path = getenv("LEDGER_FAULT_CLOCK_FILE");
  if (!path || !*path) return 0;
  struct timespec mono;
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &mono);
  int64_t now_ns = (int64_t)mono.tv_sec * 1000000000 + mono.tv_nsec;
  if (now_ns < __atomic_load_n(&next_read_ns, __ATOMIC_ACQUIRE)) return __atomic_load_n(&cached, __ATOMIC_RELAXED);
  int64_t off = 0;
  int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[64] = {0};
    long n = syscall(SYS_read, fd, buf, sizeof buf - 1);
    syscall(SYS_close, fd);
    if (n > 0) {
      buf[n] = 0;
      off = strtoll(buf, NULL, 10);
    }
  }
  __atomic_store_n(&cached, off, __ATOMIC_RELAXED);
  __atomic_store_n(&next_read_ns, now_ns + 10000000, __ATOMIC_RELEASE);
  return off;
}

int clock_gettime(clockid_t id, struct timespec* ts) {
  REAL(clock_gettime);
  int rc = real_clock_gettime(id, ts);
  if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += clock_offset();
  return rc;
}

int gettimeofday(struct timeval* tv, void* tz) {
  REAL(gettimeofday);
  int rc = real_gettimeofday(tv, tz);
  if (rc == 0) tv->tv_sec += clock_offset();
  return rc;
}

time_t time(time_t* out) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (out) *out = ts.tv_sec;
  return ts.tv_sec;
}
