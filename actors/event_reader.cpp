// Reading events.log back: tolerant of what a crash leaves behind (a torn last line,
// zero-filled blocks after a power cut on some file systems, garbage lines).
#include <fcntl.h>

#include <cstdio>
#include <cstdlib>
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

std::vector<EventRecord> read_events(const std::string& path, std::uint64_t after_seq, std::size_t max,
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
