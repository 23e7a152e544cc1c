#pragma once
// RefusalLimiter: how many events a refused request may write. A sender that is refused
// (bad signature, replayed delivery, wrong method...) chooses the rate and the content of
// what it sends, so neither may decide how much lands in events.log: each source address gets
// a token bucket (`burst` events, refilled over `window_ms`), all sources together a larger
// one, and what is over either is counted and reported later as one summary event. The table
// of sources is bounded (least recently seen evicted), so a spray of addresses costs memory
// only up to `max_sources`.
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace actors {

// Client text (ids, header values, paths, reasons) as an event may hold it: control
// characters become '?', and at most `max` bytes (cut on a UTF-8 boundary, "…" appended).
std::string capped_client_text(std::string_view text, std::size_t max = 128);

// "127.0.0.1:5000" -> "127.0.0.1", "[::1]:5000" -> "[::1]"; anything else as it is.
std::string source_address(std::string_view peer);

class RefusalLimiter {
 public:
  struct Options {
    double burst = 20;                // per source
    double global_burst = 300;        // all sources together
    std::int64_t window_ms = 60'000;  // a bucket refills fully in this time
    std::size_t max_sources = 1024;
  };
  struct Suppressed {
    std::string source;  // "" for the global bucket ("*" in events)
    std::uint64_t count = 0;
  };
  struct Decision {
    bool record = false;
    // Summaries to record first (suppressed refusals now over: this source's, evicted
    // sources', the global bucket's).
    std::vector<Suppressed> summaries;
  };

  RefusalLimiter() : RefusalLimiter(Options{}) {}
  explicit RefusalLimiter(Options opts) : opts_(opts), global_{opts.global_burst, 0, 0} {}

  Decision admit(std::string_view source, std::int64_t now_ms);
  std::size_t sources() const noexcept { return by_source_.size(); }

 private:
  struct Bucket {
    double tokens = 0;
    std::int64_t updated_ms = 0;
    std::uint64_t suppressed = 0;
  };
  struct Entry {
    std::string source;
    Bucket bucket;
  };
  bool take(Bucket& b, double burst, std::int64_t now_ms) const;

  Options opts_;
  Bucket global_;
  std::list<Entry> lru_;  // most recently seen first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> by_source_;
};

}  // namespace actors
