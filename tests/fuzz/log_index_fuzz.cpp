// A service's log directory as LogStore::open finds it after a crash or a disk
// fault: index files of any length and content next to logs of any size. Opening,
// the time index lookup (?since=), tail lookup and reading must cope.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "actors/log_store.hpp"

namespace {

std::string scratch_dir() {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/dockless-fuzz-logs." + std::to_string(::getpid());
}

void put(const std::string& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  (void)!::write(fd, bytes.data(), bytes.size());
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  static const std::string dir = scratch_dir();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  // Bytes 0-2 cut the rest into: current index, current log, rotated index, rotated log.
  std::string_view rest(reinterpret_cast<const char*>(data + 3), size - 3);
  std::string_view parts[4];
  for (int i = 0; i < 3; ++i) {
    const std::size_t cut = std::min<std::size_t>(rest.size(), static_cast<std::size_t>(data[i]) * 4);
    parts[i] = rest.substr(0, cut);
    rest.remove_prefix(cut);
  }
  parts[3] = rest;
  put(dir + "/stdout.log.idx", parts[0]);
  put(dir + "/stdout.log", parts[1]);
  put(dir + "/stdout.log.1.idx", parts[2]);
  put(dir + "/stdout.log.1", parts[3]);
  auto opened = actors::LogStore::open(dir, 1 << 20, 3);
  if (!opened) return 0;
  auto store = std::move(opened).value();
  const auto s = actors::Stream::out;
  const std::uint64_t begin = store->begin(s), end = store->end(s);
  if (begin > end) __builtin_trap();
  for (const std::int64_t t : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{1700000000000}, INT64_MAX, INT64_MIN}) {
    const std::uint64_t p = store->position_of_time(s, t);
    if (p < begin || p > end) __builtin_trap();
  }
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{5}, SIZE_MAX}) {
    const std::uint64_t p = store->position_of_tail_lines(s, n);
    if (p < begin || p > end) __builtin_trap();
  }
  std::uint64_t pos = begin;
  for (int i = 0; i < 64 && pos < end; ++i) {
    auto chunk = store->read(s, pos, 4096);
    if (!chunk || chunk->data.empty()) break;
    if (chunk->pos < pos) __builtin_trap();
    pos = chunk->pos + chunk->data.size();
  }
  store.reset();
  std::filesystem::remove_all(dir);
  return 0;
}
