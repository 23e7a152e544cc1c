/* /init of the ARM test initramfs (tools/arm-test.sh): a static PID 1 that prepares a
 * minimal system (proc, sysfs, cgroup2, devtmpfs, tmpfs on /tmp and /run, loopback up), runs the
 * test programs listed in /arm-tests.txt one by one, each in its own process group and
 * under its own time limit, prints one parseable line per test and a summary, then
 * powers the machine off.
 *
 * /arm-tests.txt, one test per line ('#' starts a comment):
 *   NAME TIMEOUT_SECONDS PROGRAM [ARG...]
 * Console lines for tools/arm-test.sh, each starting with "DOCKLESS-ARM ":
 *   KERNEL <release> <machine>
 *   BEGIN <name>
 *   RESULT <name> <PASS|FAIL|SKIP|TIMEOUT> exit=<code> secs=<elapsed>
 *   SUMMARY passed=<n> failed=<n> skipped=<n> secs=<elapsed>
 * Plain C with no library but libc: PID 1 must not depend on what it tests. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kMaxLine = 1024, kMaxArgs = 32 };

static void say(const char* fmt, ...) {
  char buf[kMaxLine + 128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  /* Unbuffered: a test that hangs the machine must not take earlier lines with it. */
  ssize_t off = 0;
  while (off < n) {
    ssize_t w = write(STDOUT_FILENO, buf + off, (size_t)(n - off));
    if (w <= 0) return;
    off += w;
  }
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void mount_or_warn(const char* type, const char* target, const char* opts) {
  mkdir(target, 0755);
  if (mount(type, target, type, MS_NOSUID, opts) != 0 && errno != EBUSY)
    say("DOCKLESS-ARM WARNING mount %s on %s: %s", type, target, strerror(errno));
}

/* The kernel gives PID 1 /dev/console as stdio only when the archive has that node;
 * opening it from devtmpfs ourselves means the packer needs no mknod (or root). */
static void attach_console(void) {
  int fd = open("/dev/console", O_RDWR | O_NOCTTY);
  if (fd < 0) return;
  for (int i = 0; i < 3; ++i) dup2(fd, i);
  if (fd > 2) close(fd);
}

/* Tests listen on 127.0.0.1 and ::1: an initramfs starts with lo down. */
static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) say("DOCKLESS-ARM WARNING lo up: %s", strerror(errno));
  }
  close(s);
}

static int split_words(char* line, char** words, int max) {
  int n = 0;
  for (char* tok = strtok(line, " \t\r\n"); tok && n < max - 1; tok = strtok(NULL, " \t\r\n"))
    words[n++] = tok;
  words[n] = NULL;
  return n;
}

/* PID 1 inherits every orphan: reap whatever has exited, and report whether `child`
 * was among them (its wait status in *status). */
static int reap_all(pid_t child, int* status) {
  int found = 0;
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, WNOHANG);
    if (p <= 0) return found;
    if (p == child) {
      *status = st;
      found = 1;
    }
  }
}

/* Returns the test's exit code, or -1 on timeout, -2 when it could not be started. */
static int run_one(char** argv, int timeout_s) {
  pid_t child = fork();
  if (child < 0) return -2;
  if (child == 0) {
    setpgid(0, 0);
    execv(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  setpgid(child, child);
  const double deadline = now_seconds() + timeout_s;
  int status = 0;
  int timed_out = 0;
  const struct timespec tick = {0, 20 * 1000 * 1000};
  while (!reap_all(child, &status)) {
    if (!timed_out && now_seconds() > deadline) {
      timed_out = 1;
      kill(-child, SIGKILL);
    }
    nanosleep(&tick, NULL);
  }
  /* Whatever the test left behind in its group goes too: the next test starts clean. */
  kill(-child, SIGKILL);
  if (timed_out) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

int main(void) {
  mount_or_warn("devtmpfs", "/dev", "mode=0755");
  attach_console();
  mount_or_warn("proc", "/proc", NULL);
  mount_or_warn("sysfs", "/sys", NULL);
  /* A full cgroup v2 hierarchy with every controller this kernel has (none is bound to a v1
   * hierarchy here): the resource limit tests enforce memory, pids and cpu limits in it. */
  mount_or_warn("cgroup2", "/sys/fs/cgroup", NULL);
  mount_or_warn("tmpfs", "/tmp", "mode=1777");
  mount_or_warn("tmpfs", "/run", "mode=0755");
  mkdir("/dev/shm", 01777);
  mount_or_warn("tmpfs", "/dev/shm", "mode=1777");
  loopback_up();
  setenv("PATH", "/bin:/usr/bin:/sbin", 1);
  setenv("HOME", "/tmp", 1);
  setenv("TMPDIR", "/tmp", 1);
  /* Only failures and the tests' own printf lines reach the (slow, emulated) console. */
  setenv("GTEST_BRIEF", "1", 1);
  setenv("GTEST_COLOR", "no", 1);
  chdir("/tmp");

  struct utsname u;
  if (uname(&u) == 0) say("DOCKLESS-ARM KERNEL %s %s", u.release, u.machine);

  int passed = 0, failed = 0, skipped = 0;
  const double start = now_seconds();
  FILE* list = fopen("/arm-tests.txt", "re");
  if (!list) {
    say("DOCKLESS-ARM RESULT list FAIL exit=-2 secs=0 (no /arm-tests.txt: %s)", strerror(errno));
    ++failed;
  }
  char line[kMaxLine];
  while (list && fgets(line, sizeof line, list)) {
    char* hash = strchr(line, '#');
    if (hash) *hash = '\0';
    char* words[kMaxArgs + 1];
    int n = split_words(line, words, kMaxArgs + 1);
    if (n == 0) continue;
    if (n < 3 || atoi(words[1]) <= 0) {
      say("DOCKLESS-ARM RESULT %s FAIL exit=-2 secs=0 (bad line in /arm-tests.txt)", words[0]);
      ++failed;
      continue;
    }
    const char* name = words[0];
    say("DOCKLESS-ARM BEGIN %s", name);
    const double t0 = now_seconds();
    int rc = run_one(words + 2, atoi(words[1]));
    const double secs = now_seconds() - t0;
    const char* verdict = rc == 0 ? "PASS" : rc == 77 ? "SKIP" : rc == -1 ? "TIMEOUT" : "FAIL";
    if (rc == 0) ++passed;
    else if (rc == 77) ++skipped;
    else ++failed;
    say("DOCKLESS-ARM RESULT %s %s exit=%d secs=%.1f", name, verdict, rc, secs);
  }
  if (list) fclose(list);
  say("DOCKLESS-ARM SUMMARY passed=%d failed=%d skipped=%d secs=%.1f", passed, failed, skipped,
      now_seconds() - start);
  sync();
  reboot(RB_POWER_OFF);
  /* PID 1 must not exit (that panics the kernel); power-off does not return. */
  for (;;) pause();
}
