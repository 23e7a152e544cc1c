// events.log as a reader finds it after a crash or a disk fault: torn tails, corrupt
// lines, sequence numbers out of order, across a rotated file (the input's part before its
// first NUL byte, if any, is events.log.1). Reading must skip what is bad and never fail.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "actors/event_log.hpp"

namespace {
std::string scratch_file() {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/dockless-fuzz-events." + std::to_string(::getpid());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t nl = text.find('\n', start);
    const std::string_view line = text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    if (auto rec = actors::parse_event_line(line)) (void)rec->seq;
    (void)actors::parse_utc_ms(line.substr(0, 24));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  static const std::string path = scratch_file();
  static const std::string rotated = actors::event_file_path(path, 1);
  const std::size_t split = text.find('\0');
  const std::string_view older = split == std::string_view::npos ? std::string_view{} : text.substr(0, split);
  const std::string_view current = split == std::string_view::npos ? text : text.substr(split + 1);
  auto put = [](const std::string& file, std::string_view bytes) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    const bool ok = ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
    ::close(fd);
    return ok;
  };
  ::unlink(rotated.c_str());
  if (split != std::string_view::npos && !put(rotated, older)) return 0;
  if (!put(path, current)) return 0;
  std::uint64_t corrupt = 0;
  const auto all = actors::read_events(path, 0, SIZE_MAX, &corrupt);
  std::uint64_t last = 0;
  for (const auto& e : all) {
    if (e.seq <= last && last != 0) __builtin_trap();  // oldest first, each once
    last = e.seq;
    (void)e.parse();
  }
  if (!all.empty()) {
    const auto later = actors::read_events(path, all.front().seq, 2);
    if (later.size() > 2) __builtin_trap();
  }
  ::unlink(path.c_str());
  ::unlink(rotated.c_str());
  return 0;
}
