// Reading events.log back: tolerant of what a crash leaves behind (a torn last line,
// zero-filled blocks after a power cut on some file systems, garbage lines).
#include <fcntl.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>

#include "actors/event_log.hpp"
#include "runtime/fs.hpp"

namespace actors {

namespace {

// Our own lines start with {"seq":N — reading that prefix lets a reader skip old lines
// without a full JSON parse. nullopt when the line does not start that way.
std::optional<std::uint64_t> quick_seq(std::string_view line) {
  constexpr std::string_view prefix = "{\"seq\":";
  if (line.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::uint64_t v = 0;
  std::size_t i = prefix.size();
  const std::size_t start = i;
  while (i < line.size() && line[i] >= '0' && line[i] <= '9' && i - start < 20) {
    v = v * 10 + static_cast<std::uint64_t>(line[i] - '0');
    ++i;
  }
  if (i == start || i >= line.size() || line[i] != ',') return std::nullopt;
  return v;
}

}  // namespace

nlohmann::json EventRecord::parse() const {
  auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return nlohmann::json::object();
  return j;
}

std::optional<EventRecord> parse_event_line(std::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto it = j.find("seq");
  if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
  return EventRecord{it->get<std::uint64_t>(), std::string(line)};
}

std::string event_file_path(const std::string& path, int generation) {
  return generation == 0 ? path : path + "." + std::to_string(generation);
}

std::optional<std::int64_t> parse_utc_ms(std::string_view text) {
  // Exactly the 24 characters format_utc_ms writes.
  if (text.size() != 24 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text[19] != '.' || text[23] != 'Z')
    return std::nullopt;
  auto num = [&](std::size_t at, std::size_t len) -> int {
    int v = 0;
    for (std::size_t i = at; i < at + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return -1;
      v = v * 10 + (text[i] - '0');
    }
    return v;
  };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  tm.tm_hour = num(11, 2);
  tm.tm_min = num(14, 2);
  tm.tm_sec = num(17, 2);
  const int ms = num(20, 3);
  if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mday < 1 || tm.tm_hour < 0 || tm.tm_min < 0 || tm.tm_sec < 0 ||
      ms < 0)
    return std::nullopt;
  return static_cast<std::int64_t>(::timegm(&tm)) * 1000 + ms;
}

namespace {

// The seq of a file's first event (its first line), nullopt when empty or unreadable.
std::optional<std::uint64_t> first_seq_of(const std::string& path) {
  runtime::Result<runtime::Fd> opened = runtime::open_data_file(path, O_RDONLY, 0640);
  if (!opened) return std::nullopt;
  char buf[64];
  const ssize_t n = ::pread(opened.value().get(), buf, sizeof buf, 0);
  if (n <= 0) return std::nullopt;
  return quick_seq(std::string_view(buf, static_cast<std::size_t>(n)));
}

}  // namespace

std::vector<EventRecord> read_events(const std::string& path, std::uint64_t after_seq, std::size_t max,
                                     std::uint64_t* corrupt) {
  // Newest rotated file back: the first one that starts at or before after_seq + 1 holds the
  // start; older ones hold nothing wanted. Every file's first line starts with its seq.
  int start = 0;
  for (int g = 1; g < kMaxEventFiles; ++g) {
    const std::string file = event_file_path(path, g);
    if (::access(file.c_str(), F_OK) != 0) break;
    start = g;
    auto first = first_seq_of(file);
    if (first && *first <= after_seq + 1) break;
  }
  std::vector<EventRecord> out;
  for (int g = start; g >= 0 && out.size() < max; --g) {
    auto part = read_event_file(event_file_path(path, g), out.empty() ? after_seq : out.back().seq,
                                max - out.size(), corrupt);
    for (auto& ev : part) out.push_back(std::move(ev));
  }
  return out;
}

std::vector<EventRecord> read_event_file(const std::string& path, std::uint64_t after_seq, std::size_t max,
                                         std::uint64_t* corrupt) {
  std::vector<EventRecord> out;
  // Read-only 0640: open_data_file would chmod only a file that had more.
  runtime::Result<runtime::Fd> opened = runtime::open_data_file(path, O_RDONLY, 0640);
  if (!opened) return out;
  std::unique_ptr<FILE, int (*)(FILE*)> f(::fdopen(opened.value().get(), "rb"), &std::fclose);
  if (!f) return out;
  (void)opened.value().release();  // the FILE owns it now
  char* buf = nullptr;
  std::size_t cap = 0;
  ssize_t n;
  while (out.size() < max && (n = ::getline(&buf, &cap, f.get())) > 0) {
    std::string_view line(buf, static_cast<std::size_t>(n));
    if (line.back() != '\n') {
      // Torn: the writer died mid-line (or is mid-write right now). Never half an event.
      if (corrupt) ++*corrupt;
      break;
    }
    line.remove_suffix(1);
    if (auto q = quick_seq(line); q && *q <= after_seq) continue;
    auto ev = parse_event_line(line);
    if (!ev) {
      if (corrupt) ++*corrupt;
      continue;
    }
    if (ev->seq <= after_seq) continue;
    // Sequence numbers only grow in a sound file; one that goes back (a corrupt or
    // hand-edited file) would make a `since=` client loop or miss events.
    if (!out.empty() && ev->seq <= out.back().seq) {
      if (corrupt) ++*corrupt;
      continue;
    }
    out.push_back(std::move(*ev));
  }
  std::free(buf);
  return out;
}

}  // namespace actors
