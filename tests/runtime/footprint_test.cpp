// release_startup_pages on real mappings: read-only file pages leave the page tables
// and read back intact; a private copy (a relocated or written page) is never dropped.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "runtime/footprint.hpp"
#include "test_util.hpp"

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kPages = 64;

// Rss in KiB of the mapping that starts at `addr`, from /proc/self/smaps.
long rss_kib(const void* addr) {
  std::FILE* f = std::fopen("/proc/self/smaps", "re");
  if (!f) return -1;
  char line[512];
  bool ours = false;
  long rss = -1;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long start = 0, end = 0;
    if (std::sscanf(line, "%lx-%lx ", &start, &end) == 2) {  // a mapping's header line
      ours = start == reinterpret_cast<unsigned long>(addr);
      continue;
    }
    long kb = 0;
    if (ours && std::sscanf(line, "Rss: %ld kB", &kb) == 1) {
      rss = kb;
      break;
    }
  }
  std::fclose(f);
  return rss;
}

struct MappedFile {
  explicit MappedFile(const std::string& path, int prot) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    base = static_cast<unsigned char*>(::mmap(nullptr, kPages * kPage, prot, MAP_PRIVATE, fd, 0));
    ::close(fd);
    if (base == MAP_FAILED) base = nullptr;
  }
  ~MappedFile() {
    if (base) ::munmap(base, kPages * kPage);
  }
  unsigned long checksum() const {
    unsigned long sum = 0;
    for (std::size_t i = 0; i < kPages * kPage; i += 64) sum += base[i];
    return sum;
  }
  unsigned char* base = nullptr;
};

std::string pattern_file(const std::string& dir) {
  std::string path = dir + "/pattern";
  std::string data(kPages * kPage, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / kPage);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return {};
  std::fwrite(data.data(), 1, data.size(), f);
  std::fclose(f);
  return path;
}

}  // namespace

TEST(Footprint, ReadOnlyFilePagesLeaveThePageTablesAndReadBackIntact) {
  testutil::TempDir dir;
  const std::string path = pattern_file(dir.path());
  ASSERT_FALSE(path.empty());
  MappedFile m(path, PROT_READ);
  ASSERT_NE(m.base, nullptr);
  const unsigned long before = m.checksum();  // touches every page
  ASSERT_EQ(rss_kib(m.base), static_cast<long>(kPages * kPage / 1024));
  EXPECT_GE(runtime::release_startup_pages(), kPages * kPage);
  EXPECT_EQ(rss_kib(m.base), 0);
  EXPECT_EQ(m.checksum(), before);
}

TEST(Footprint, APrivateCopyIsKept) {
  testutil::TempDir dir;
  const std::string path = pattern_file(dir.path());
  ASSERT_FALSE(path.empty());
  // The shape of a relocated segment: written once, then made read-only (RELRO).
  MappedFile m(path, PROT_READ | PROT_WRITE);
  ASSERT_NE(m.base, nullptr);
  m.base[kPage + 3] = 0xAB;
  ASSERT_EQ(::mprotect(m.base, kPages * kPage, PROT_READ), 0);
  (void)m.checksum();
  runtime::release_startup_pages();
  EXPECT_EQ(m.base[kPage + 3], 0xAB);
  EXPECT_GT(rss_kib(m.base), 0);
}
