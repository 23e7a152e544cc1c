// `dockless top`: the services' CPU, memory, restarts and last hour, live in the terminal
// (one GET /v1/history every 2 s, the answer the dashboard draws). Without a terminal, or
// with --once, one snapshot and exit: what scripts and the tests use.
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "tools/cli/cli_context.hpp"
#include "tools/cli/cli_format.hpp"
#include "tools/cli/cli_top.hpp"

namespace tools::cli {

namespace {

constexpr int kRefreshMs = 2000;
volatile sig_atomic_t g_quit = 0;

void on_signal(int) { g_quit = 1; }

std::size_t columns() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 100;
}

void write_all(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

// The terminal as top found it, put back however top ends (q, Ctrl-C, an error): the
// alternate screen left, the cursor shown, the input mode restored.
class Screen {
 public:
  Screen() {
    if (::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      // Keys arrive one at a time and are not echoed; ISIG stays on, so Ctrl-C is SIGINT.
      raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      restore_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    write_all("\x1b[?1049h\x1b[?25l");
  }
  ~Screen() {
    write_all("\x1b[?25h\x1b[?1049l");
    if (restore_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;

 private:
  termios saved_{};
  bool restore_ = false;
};

// Waits up to `ms` for a key; true when it was q (or Q).
bool quit_key(int ms) {
  pollfd p{STDIN_FILENO, POLLIN, 0};
  if (::poll(&p, 1, ms) <= 0) return false;  // timeout, or EINTR (Ctrl-C sets g_quit)
  char c = 0;
  while (::read(STDIN_FILENO, &c, 1) == 1)
    if (c == 'q' || c == 'Q') return true;
  return false;
}

}  // namespace

int cmd_top(Context& ctx, const Flags& f) {
  const bool live = !f.has("once") && ::isatty(STDOUT_FILENO);
  auto snapshot = [&](int* exit) -> std::optional<std::string> {
    auto resp = send(ctx, {"GET", "/v1/history", {}, ""}, exit);
    if (!resp) return std::nullopt;
    if (!success(resp->status)) {
      *exit = report(*resp, "");
      return std::nullopt;
    }
    const nlohmann::json j = nlohmann::json::parse(resp->body, nullptr, false);
    if (!j.is_object()) {
      std::fprintf(stderr, "dockless: unexpected answer to GET /v1/history (not a JSON object)\n");
      *exit = kRefused;
      return std::nullopt;
    }
    return render_top(j, colour_enabled(STDOUT_FILENO), live ? columns() : 100);
  };
  int exit = kOk;
  if (!live) {
    std::optional<std::string> text = snapshot(&exit);
    if (text) write_all(*text);
    return exit;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: the wait for a key ends at once
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  Screen screen;
  while (!g_quit) {
    std::optional<std::string> text = snapshot(&exit);
    if (!text) break;
    write_all("\x1b[H\x1b[2J" + *text + "\n(q quits, refreshed every 2 s)");
    if (quit_key(kRefreshMs)) break;
  }
  return g_quit || exit == kOk ? kOk : exit;
}

}  // namespace tools::cli
