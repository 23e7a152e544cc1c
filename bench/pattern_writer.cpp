// The writer side of the splice benchmark: `dockless-bench --write-pattern MIB`
// writes MIB mebibytes of a fixed pattern to stdout as fast as it can, like
// `dd if=/dev/zero bs=1M count=MIB`, but needing nothing besides this binary.
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "bench.hpp"

namespace bench {

int write_pattern_main(std::uint64_t mib) {
  constexpr std::size_t kChunk = 1 << 20;
  std::vector<unsigned char> buf(kChunk);
  for (std::size_t i = 0; i < kChunk; ++i) buf[i] = static_cast<unsigned char>(i * 131 + 7);
  for (std::uint64_t m = 0; m < mib; ++m) {
    std::size_t off = 0;
    while (off < kChunk) {
      ssize_t n = ::write(STDOUT_FILENO, buf.data() + off, kChunk - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        return 1;  // EPIPE: the reader gave up; its side reports the failure
      }
      off += static_cast<std::size_t>(n);
    }
  }
  return 0;
}

}  // namespace bench
