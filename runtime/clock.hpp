#pragma once
// The wall clock as the daemon records it: milliseconds since the Unix epoch. Event times,
// log index entries, snapshots and API answers all read it here, so they agree on one scale.
#include <chrono>
#include <cstdint>

namespace runtime {

inline std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

inline std::int64_t now_unix_ms() { return unix_ms(std::chrono::system_clock::now()); }

// Seconds, for what is compared with a signature's timestamp or shown as *_unix.
inline std::int64_t now_unix_s() { return now_unix_ms() / 1000; }

}  // namespace runtime
