#include "runtime/footprint.hpp"

#include <link.h>
#include <malloc.h>
#include <unistd.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstring>

namespace runtime {
namespace {

struct Mapping {
  unsigned long start = 0, end = 0;
  bool read_only_file = false;  // r--p or r-xp, backed by a file
  bool has_private_copy = false;  // Anonymous > 0: relocated or written pages
};

void release(const Mapping& m, unsigned long& total) noexcept {
  if (!m.read_only_file || m.has_private_copy || m.end <= m.start) return;
  // Private file pages that were never written are the file's own pages: zapping them
  // only unmaps; the next access maps them again from the page cache.
  void* start = reinterpret_cast<void*>(m.start);  // NOLINT(performance-no-int-to-ptr): an address smaps printed
  if (::madvise(start, m.end - m.start, MADV_DONTNEED) == 0) total += m.end - m.start;
}

}  // namespace

unsigned long release_startup_pages() noexcept {
  ::malloc_trim(0);
  std::FILE* f = std::fopen("/proc/self/smaps", "re");
  if (!f) return 0;
  unsigned long total = 0;
  Mapping cur;
  char line[512];
  while (std::fgets(line, sizeof line, f)) {
    unsigned long start = 0, end = 0, offset = 0, inode = 0;
    char perms[8] = {};
    char dev[16] = {};
    if (std::sscanf(line, "%lx-%lx %7s %lx %15s %lu", &start, &end, perms, &offset, dev, &inode) == 6) {
      release(cur, total);
      cur = Mapping{start, end,
                    inode != 0 && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p', false};
      continue;
    }
    unsigned long kb = 0;
    if (std::sscanf(line, "Anonymous: %lu kB", &kb) == 1 && kb > 0) cur.has_private_copy = true;
  }
  release(cur, total);
  std::fclose(f);
  return total;
}

void release_startup_pages_now() noexcept { (void)release_startup_pages(); }

void release_own_code_pages() noexcept {
  // The first object dl_iterate_phdr reports is the executable (dlpi_name ""): stop there.
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void*) noexcept -> int {
        const auto page = static_cast<unsigned long>(::sysconf(_SC_PAGESIZE));
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) != 0) continue;
          // Whole pages strictly inside the segment: never a page shared with writable data.
          const unsigned long from = (info->dlpi_addr + ph.p_vaddr + page - 1) / page * page;
          const unsigned long to = (info->dlpi_addr + ph.p_vaddr + ph.p_filesz) / page * page;
          if (to > from)
            (void)::madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);  // NOLINT(performance-no-int-to-ptr): a segment's address
        }
        return 1;
      },
      nullptr);
}

}  // namespace runtime
