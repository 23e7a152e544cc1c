// The service of the supervisor benchmark (bench/supervisor_bench.py); the same binary runs
// under Dockless and under supervisord, so both sides pay the same exec and start-up.
//
//   restart_probe FILE          appends "start <ns>\n", then "exit <ns>\n", then _exit(1)
//   restart_probe --write MIB FILE [KIB]
//                               appends "start <ns>\n", writes MIB MiB of a pattern to stdout
//                               in KIB KiB write()s (default 1024), appends "end <ns>\n", exits 0
//   restart_probe --write-text MIB KIB FILE
//                               the same with 64-byte text lines (63 printable bytes and
//                               '\n') in KIB KiB write()s: the writer of bench/peers_bench.py,
//                               whose line-based loggers (svlogd, s6-log) would otherwise
//                               split, cut or stamp the binary pattern's "lines"
//   restart_probe --loop N FILE runs `restart_probe FILE` N times back to back with
//                               posix_spawn + waitpid: the floor of the restart latency,
//                               a supervisor that does nothing but fork, exec and wait
//
// <ns> is CLOCK_MONOTONIC, the clock Python's time.monotonic_ns() reads, so the bench can
// put its own observations on the same axis. Each line is one write() on an O_APPEND fd:
// a line is never torn or interleaved, even if two instances overlap. No stdio, no
// allocation before the first stamp: the build links it statically where it can, so
// "start" is taken right after execve with no dynamic loader in between.
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

static int append_stamp(int fd, const char* word) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  char line[48];
  size_t n = strlen(word);
  // `line` is written with its length, never read as a C string.
  memcpy(line, word, n);  // NOLINT(bugprone-not-null-terminated-result)
  line[n++] = ' ';
  char digits[24];
  size_t d = 0;
  do {
    digits[d++] = (char)('0' + ns % 10);
    ns /= 10;
  } while (ns != 0);
  while (d > 0) line[n++] = digits[--d];
  line[n++] = '\n';
  return write(fd, line, n) == (ssize_t)n ? 0 : -1;
}

static int open_append(const char* path) {
  return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

// `chunk` divides 1 MiB (a power of two up to it), so MIB MiB is a whole number of writes.
static int write_pattern(uint64_t mib, size_t chunk) {
  enum { kMax = 1 << 20 };
  static unsigned char buf[kMax];
  for (size_t i = 0; i < kMax; ++i) buf[i] = (unsigned char)(i * 131 + 7);
  for (uint64_t c = 0; c < mib * (kMax / chunk); ++c) {
    size_t off = 0;
    while (off < chunk) {
      ssize_t w = write(STDOUT_FILENO, buf + off, chunk - off);
      if (w < 0) {
        if (errno == EINTR) continue;
        return -1;  // EPIPE/ENOSPC: the bench sees the bytes missing and reports it
      }
      off += (size_t)w;
    }
  }
  return 0;
}

static int write_text(uint64_t mib, uint64_t kib) {
  enum { kMax = 1 << 20, kLine = 64 };
  static char buf[kMax];
  if (kib == 0 || kib > kMax / 1024) return -1;
  for (size_t i = 0; i < kMax; ++i)
    buf[i] = (char)(i % kLine == kLine - 1 ? '\n' : 'a' + (int)((i / kLine + i) % 26));
  const size_t chunk = (size_t)kib * 1024;
  for (uint64_t left = mib << 20; left > 0;) {
    // A chunk is a whole number of lines and starts a line, so buf[0..n) is one.
    size_t n = left < chunk ? (size_t)left : chunk;
    size_t off = 0;
    while (off < n) {
      ssize_t w = write(STDOUT_FILENO, buf + off, n - off);
      if (w < 0) {
        if (errno == EINTR) continue;
        return -1;
      }
      off += (size_t)w;
    }
    left -= n;
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 2) {
    int fd = open_append(argv[1]);
    if (fd < 0 || append_stamp(fd, "start") != 0) _exit(2);
    append_stamp(fd, "exit");
    // _exit, not exit: no atexit work between the stamp and the kernel's exit.
    _exit(1);
  }
  if ((argc == 4 || argc == 5) && strcmp(argv[1], "--write") == 0) {
    size_t chunk = argc == 5 ? (size_t)strtoull(argv[4], NULL, 10) << 10 : 1u << 20;
    if (chunk == 0 || chunk > (1u << 20) || (chunk & (chunk - 1)) != 0) _exit(2);
    int fd = open_append(argv[3]);
    if (fd < 0 || append_stamp(fd, "start") != 0) _exit(2);
    if (write_pattern(strtoull(argv[2], NULL, 10), chunk) != 0) _exit(3);
    append_stamp(fd, "end");
    _exit(0);
  }
  if (argc == 5 && strcmp(argv[1], "--write-text") == 0) {
    int fd = open_append(argv[4]);
    if (fd < 0 || append_stamp(fd, "start") != 0) _exit(2);
    if (write_text(strtoull(argv[2], NULL, 10), strtoull(argv[3], NULL, 10)) != 0) _exit(3);
    append_stamp(fd, "end");
    _exit(0);
  }
  if (argc == 4 && strcmp(argv[1], "--loop") == 0) {
    char* child_argv[] = {argv[0], argv[3], NULL};
    for (long i = strtol(argv[2], NULL, 10); i > 0; --i) {
      pid_t pid;
      if (posix_spawn(&pid, argv[0], NULL, NULL, child_argv, environ) != 0) _exit(3);
      int status;
      while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) _exit(3);
    }
    _exit(0);
  }
  static const char usage[] =
      "usage: restart_probe FILE | --write MIB FILE [KIB] | --write-text MIB KIB FILE | --loop N FILE\n";
  (void)!write(STDERR_FILENO, usage, sizeof usage - 1);
  _exit(2);
}
