// atomic_write and make_dirs on a real temp directory.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <set>
#include <vector>
#include <fstream>
#include <sstream>

#include "run_loop.hpp"
#include "runtime/fs.hpp"
#include "test_util.hpp"

using namespace runtime;

namespace {
std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
// Everything in `dir` but the named files: temp files left behind show up here.
std::vector<std::string> extra_entries(const std::string& dir, const std::set<std::string>& expected) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (!expected.count(e.path().filename().string())) out.push_back(e.path().filename().string());
  return out;
}
}  // namespace

TEST(AtomicWrite, CreatesThenReplaces) {
  testutil::TempDir dir;
  const std::string path = dir / "state.json";
  run_loop([&]() -> Task<void> {
    Result<void> a = co_await atomic_write(path, "{\"v\":1}\n");
    EXPECT_TRUE(a.ok()) << a.message();
    EXPECT_EQ(slurp(path), "{\"v\":1}\n");
    std::string big(1 << 20, 'b');
    big.back() = 'E';
    Result<void> b = co_await atomic_write(path, big, 0600);
    EXPECT_TRUE(b.ok()) << b.message();
    EXPECT_EQ(slurp(path), big);
    Result<void> c = co_await atomic_write(path, "");
    EXPECT_TRUE(c.ok());
    EXPECT_EQ(slurp(path), "");
  });
  EXPECT_TRUE(extra_entries(dir.path(), {"state.json"}).empty()) << "temp file left behind";
}

TEST(AtomicWrite, ModeAppliesToNewFile) {
  testutil::TempDir dir;
  const std::string path = dir / "secret";
  const mode_t old_umask = ::umask(022);
  run_loop([&]() -> Task<void> { EXPECT_TRUE((co_await atomic_write(path, "k", 0600)).ok()); });
  ::umask(old_umask);
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(AtomicWrite, MissingDirectoryIsEnoentAndOldFileUntouched) {
  testutil::TempDir dir;
  const std::string keep = dir / "keep";
  run_loop([&]() -> Task<void> {
    EXPECT_TRUE((co_await atomic_write(keep, "old")).ok());
    Result<void> r = co_await atomic_write(dir / "missing/sub/file", "new");
    EXPECT_EQ(r.error(), ENOENT) << r.message();
  });
  EXPECT_EQ(slurp(keep), "old");
  EXPECT_TRUE(extra_entries(dir.path(), {"keep"}).empty());
}

// The rename fails (the target is a non-empty directory): the temp file must be
// removed and the directory left as it was.
TEST(AtomicWrite, FailedRenameRemovesTempFile) {
  testutil::TempDir dir;
  const std::string target = dir / "occupied";
  ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
  std::ofstream(target + "/inside") << "x";
  run_loop([&]() -> Task<void> {
    Result<void> r = co_await atomic_write(target, "data");
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(r.error() == EISDIR || r.error() == ENOTEMPTY || r.error() == EEXIST) << r.message();
  });
  EXPECT_TRUE(extra_entries(dir.path(), {"occupied"}).empty()) << "temp file left behind";
  EXPECT_EQ(slurp(target + "/inside"), "x");
}

TEST(MakeDirs, CreatesNestedAndIsIdempotent) {
  testutil::TempDir dir;
  const std::string deep = dir / "a/b/c/d";
  Result<void> r = make_dirs(deep);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(std::filesystem::is_directory(deep));
  EXPECT_TRUE(make_dirs(deep).ok());
  EXPECT_TRUE(make_dirs(deep + "/").ok());
  struct stat st{};
  ASSERT_EQ(::stat((dir / "a/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u & ~0022u);
}

TEST(MakeDirs, FileInTheWayIsEnotdir) {
  testutil::TempDir dir;
  std::ofstream(dir / "file") << "x";
  EXPECT_EQ(make_dirs(dir / "file").error(), ENOTDIR);
  EXPECT_EQ(make_dirs(dir / "file/sub").error(), ENOTDIR);
}
