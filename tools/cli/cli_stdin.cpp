// `dockless stdin NAME [TEXT]`: bytes for a service's stdin (stdin = true in its config).
// POSIX reads rather than iostreams: the static binary carries no iostreams for this.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "runtime/fd.hpp"
#include "tools/cli/cli_context.hpp"
#include "tools/cli/http_client.hpp"

namespace tools::cli {

namespace {

// One request's worth: well under the API's smallest body limit, and a slow service's
// queue sees the bytes in order (each request is answered before the next is sent).
constexpr std::size_t kChunk = 64 * 1024;

bool read_all(int fd, std::string* out) {
  char buf[kChunk];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    out->append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace

int cmd_stdin(Context& ctx, const Flags& f) {
  const std::string& name = f.positional[0];
  std::string bytes;
  if (f.positional.size() == 2 && f.has("file")) return usage_error("stdin", "give TEXT or --file, not both");
  if (f.positional.size() == 2) {
    bytes = f.positional[1] + "\n";  // a line, as typed
  } else {
    const std::string file = f.get("file", "-");
    runtime::Fd owned;
    int fd = STDIN_FILENO;
    if (file != "-") {
      owned = runtime::Fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
      if (!owned) {
        std::fprintf(stderr, "dockless stdin: cannot read %s: %s\n", file.c_str(), std::strerror(errno));
        return kUsage;
      }
      fd = owned.get();
    }
    if (!read_all(fd, &bytes)) {
      std::fprintf(stderr, "dockless stdin: reading %s: %s\n", file == "-" ? "standard input" : file.c_str(),
                   std::strerror(errno));
      return kUsage;
    }
  }
  const std::string path = "/v1/services/" + url_encode(name) + "/stdin";
  std::size_t sent = 0;
  do {
    const std::size_t n = std::min(kChunk, bytes.size() - sent);
    int exit = kOk;
    auto resp = send(ctx, {"POST", path, {{"Content-Type", "application/octet-stream"}}, bytes.substr(sent, n)}, &exit);
    if (!resp) return exit;
    if (!success(resp->status)) {
      if (sent > 0) std::fprintf(stderr, "dockless stdin: %zu of %zu bytes were sent\n", sent, bytes.size());
      return report(*resp, name);
    }
    sent += n;
  } while (sent < bytes.size());
  std::printf("%s: %zu bytes sent\n", name.c_str(), sent);
  return kOk;
}

}  // namespace tools::cli
