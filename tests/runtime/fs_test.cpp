// atomic_write and make_dirs on a real temp directory.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

// A link planted under the temp file's name (a crash's leftover looks the same) is
// replaced, never written through.
TEST(AtomicWrite, APlantedTempLinkRedirectsNothing) {
  testutil::TempDir dir;
  const std::string path = dir / "state.json";
  const std::string victim = dir / "victim";
  std::ofstream(victim) << "untouched";
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  ASSERT_EQ(::symlink(victim.c_str(), tmp.c_str()), 0);
  run_loop([&]() -> Task<void> { EXPECT_TRUE((co_await atomic_write(path, "new")).ok()); });
  EXPECT_EQ(slurp(victim), "untouched");
  EXPECT_EQ(slurp(path), "new");
  EXPECT_TRUE(extra_entries(dir.path(), {"state.json", "victim"}).empty()) << "temp file left behind";
}

TEST(AtomicWrite, ModeIsExactWhateverTheUmask) {
  testutil::TempDir dir;
  const std::string path = dir / "state.json";
  const mode_t old_umask = ::umask(0);
  run_loop([&]() -> Task<void> { EXPECT_TRUE((co_await atomic_write(path, "k")).ok()); });
  ::umask(old_umask);
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u) << "the default is private";
}

TEST(OpenDataFile, RefusesSymlinksAndNonRegularFiles) {
  testutil::TempDir dir;
  const std::string victim = dir / "victim";
  std::ofstream(victim) << "untouched";
  const std::string link = dir / "out.log";
  ASSERT_EQ(::symlink(victim.c_str(), link.c_str()), 0);
  EXPECT_EQ(open_data_file(link, O_RDWR | O_CREAT, 0640).error(), ELOOP);
  EXPECT_EQ(open_data_file(link, O_RDONLY, 0640).error(), ELOOP);
  EXPECT_EQ(slurp(victim), "untouched");
  // A FIFO would block a plain open for reading until a writer came: refused at once.
  const std::string fifo = dir / "err.log";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(open_data_file(fifo, O_RDONLY, 0640).error(), EINVAL);
}

TEST(OpenDataFile, CreatesWithTheModeAndNarrowsAWiderOne) {
  testutil::TempDir dir;
  const std::string path = dir / "events.log";
  const mode_t old_umask = ::umask(0);
  Result<Fd> created = open_data_file(path, O_RDWR | O_CREAT, 0640);
  ::umask(old_umask);
  ASSERT_TRUE(created.ok()) << created.message();
  struct stat st{};
  ASSERT_EQ(::fstat(created.value().get(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(::fcntl(created.value().get(), F_GETFL) & O_NONBLOCK, 0) << "blocking once opened";
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);  // as an older version or a careless umask left it
  Result<Fd> again = open_data_file(path, O_RDONLY, 0640);
  ASSERT_TRUE(again.ok()) << again.message();
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST(MakeDirs, ASymlinkIsRefusedUnlessAllowed) {
  testutil::TempDir dir;
  const std::string real = dir / "real";
  ASSERT_EQ(::mkdir(real.c_str(), 0755), 0);
  const std::string link = dir / "logs";
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  EXPECT_EQ(make_dirs(link).error(), ELOOP);
  EXPECT_EQ(make_dirs(link + "/").error(), ELOOP);
  EXPECT_TRUE(make_dirs(link, 0755, /*may_be_symlink=*/true).ok());
}
