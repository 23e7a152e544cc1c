#include "runtime/cgroup.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "runtime/fs.hpp"
#include "runtime/ops_wait.hpp"

namespace runtime {

namespace {

Result<std::string> read_at(int dirfd, const char* name) {
  Fd fd(::openat(dirfd, name, O_RDONLY | O_CLOEXEC));
  if (!fd) return Result<std::string>::failure(errno);
  return read_from_start(fd.get());
}

// One write per call: a cgroup control file takes one command per write(2).
Result<void> write_at(int dirfd, const char* name, const std::string& text) {
  Fd fd(::openat(dirfd, name, O_WRONLY | O_CLOEXEC));
  if (!fd) return Result<void>::failure(errno);
  if (::write(fd.get(), text.data(), text.size()) < 0) return Result<void>::failure(errno);
  return {};
}

std::string join(const std::string& parent, const std::string& name) {
  return parent == "/" ? "/" + name : parent + "/" + name;
}

std::string parent_of(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// mountinfo escapes blanks, tabs, newlines and backslashes as \ooo.
std::string unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct = s.substr(i + 1, 3);
      if (oct.find_first_not_of("01234567") == std::string::npos) {
        out += static_cast<char>(std::stoi(oct, nullptr, 8));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::string describe(const std::string& what, int err) { return what + ": " + std::strerror(err); }

}  // namespace

std::string Cgroup2Mount::fs_path(const std::string& path) const {
  if (root == "/") return path == "/" ? mount_point : mount_point + path;
  if (path == root) return mount_point;
  if (path.compare(0, root.size(), root) == 0 && path.size() > root.size() && path[root.size()] == '/')
    return mount_point + path.substr(root.size());
  return {};
}

Result<Cgroup2Mount> find_cgroup2_mount(const std::string& mountinfo) {
  std::ifstream in(mountinfo);
  if (!in) return Result<Cgroup2Mount>::failure(errno ? errno : ENOENT);
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    const std::size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, dash));
    std::string id, parent, dev, root, point;
    if (!(head >> id >> parent >> dev >> root >> point)) continue;
    return Cgroup2Mount{unescape(point), unescape(root)};
  }
  return Result<Cgroup2Mount>::failure(ENOENT);
}

Result<std::string> cgroup_of(pid_t pid) {
  const std::string file = pid == 0 ? "/proc/self/cgroup" : "/proc/" + std::to_string(pid) + "/cgroup";
  std::ifstream in(file);
  if (!in) return Result<std::string>::failure(ESRCH);
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, 3, "0::") == 0) return line.substr(3);
  return Result<std::string>::failure(ENOENT);
}

// ---- Cgroup ----

Result<Cgroup> Cgroup::open(int parent_fd, const std::string& parent_path, const std::string& parent_fs,
                            const std::string& name, std::string* detail) {
  Cgroup c;
  c.name_ = name;
  c.path_ = join(parent_path, name);
  c.fs_path_ = parent_fs + "/" + name;
  // Our own copy of the parent: rmdir goes through it, whoever owns the original.
  c.parent_.reset(::fcntl(parent_fd, F_DUPFD_CLOEXEC, 0));
  if (!c.parent_) {
    if (detail) *detail = describe("cgroup " + c.fs_path_, errno);
    return Result<Cgroup>::failure(errno);
  }
  c.dir_.reset(::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!c.dir_) {
    const int err = errno;
    if (detail) *detail = describe("cgroup " + c.fs_path_, err);
    return Result<Cgroup>::failure(err);
  }
  return c;
}

Result<Cgroup> Cgroup::create(int parent_fd, const std::string& parent_path, const std::string& parent_fs,
                              const std::string& name, std::string* detail) {
  // An existing one is reused: a restarted daemon's service, or one that was
  // still populated when its last instance ended.
  if (::mkdirat(parent_fd, name.c_str(), 0755) != 0 && errno != EEXIST) {
    const int err = errno;
    if (detail) *detail = describe("cgroup " + parent_fs + "/" + name, err);
    return Result<Cgroup>::failure(err);
  }
  return open(parent_fd, parent_path, parent_fs, name, detail);
}

Result<std::vector<pid_t>> Cgroup::members() const {
  Result<std::string> text = read_at(dir_.get(), "cgroup.procs");
  if (!text) return Result<std::vector<pid_t>>::failure(text.error());
  std::vector<pid_t> pids;
  std::istringstream in(*text);
  pid_t pid = 0;
  while (in >> pid) pids.push_back(pid);
  return pids;
}

Result<void> Cgroup::signal_members(int sig, pid_t skip_group) const {
  Result<std::vector<pid_t>> pids = members();
  if (!pids) return Result<void>::failure(pids.error());
  // A pid read here may exit and be reused before the kill: only within the
  // moment between the read and the kill, and a new process would have to land
  // in this cgroup to be listed at all, which only a member's fork does.
  for (pid_t pid : *pids) {
    if (skip_group > 0 && (pid == skip_group || ::getpgid(pid) == skip_group)) continue;
    (void)::kill(pid, sig);
  }
  return {};
}

Result<bool> Cgroup::populated() const {
  Result<std::string> text = read_at(dir_.get(), "cgroup.events");
  if (!text) return Result<bool>::failure(text.error());
  return text->find("populated 1") != std::string::npos;
}

Result<void> Cgroup::kill() const {
  Result<void> killed = write_at(dir_.get(), "cgroup.kill", "1");
  if (killed || killed.error() != ENOENT) return killed;
  return kill_frozen();
}

Result<void> Cgroup::kill_frozen() const {
  // A frozen cgroup's members cannot fork, so one pass over cgroup.procs (and
  // every descendant's: svc.NAME has none of its own making unless the service
  // manages cgroups itself, which then is its business) gets all.
  Result<void> frozen = write_at(dir_.get(), "cgroup.freeze", "1");
  Result<void> sent = signal_members(SIGKILL);
  // SIGKILL is delivered to frozen tasks too; thawing lets them finish dying.
  if (frozen) (void)write_at(dir_.get(), "cgroup.freeze", "0");
  return sent;
}

Task<Result<void>> Cgroup::wait_empty(std::chrono::milliseconds limit, std::stop_token stop) const {
  Fd events(::openat(dir_.get(), "cgroup.events", O_RDONLY | O_CLOEXEC));
  if (!events) co_return Result<void>::failure(errno);
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    // Reading records the file's event count in this open file; a change after
    // the read makes the poll below ready at once, so none is missed in between.
    Result<std::string> text = read_from_start(events.get());
    if (!text) co_return Result<void>::failure(text.error());
    if (text->find("populated 0") != std::string::npos) co_return Result<void>{};
    const auto left = until - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) co_return Result<void>::failure(ETIME);
    Result<int> r = co_await poll(events.get(), POLLPRI).deadline(left).stop_on(stop);
    if (!r && r.error() != ETIME) co_return Result<void>::failure(r.error());
  }
}

Result<void> Cgroup::remove() {
  if (!parent_) return {};
  // An open fd does not keep a cgroup directory; it goes once it is empty.
  if (::unlinkat(parent_.get(), name_.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return Result<void>::failure(errno);
  dir_.reset();
  parent_.reset();
  return {};
}

// ---- CgroupTree ----

std::string CgroupTree::base_name(const std::string& key) {
  // FNV-1a: stable across builds and runs (std::hash is neither promised).
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return "dockless." + std::string(hex, 12);
}

Result<CgroupTree> CgroupTree::setup(const std::string& key, std::string* reason) {
  auto fail = [&](int err, const std::string& why) {
    if (reason) *reason = why;
    return Result<CgroupTree>::failure(err);
  };
  CgroupTree t;
  Result<Cgroup2Mount> mount = find_cgroup2_mount();
  if (!mount) return fail(mount.error(), "no cgroup2 hierarchy is mounted (cgroup v1 only)");
  t.mount_ = *mount;
  Result<std::string> own = cgroup_of(0);
  if (!own) return fail(own.error(), "the daemon is in no cgroup2 cgroup (/proc/self/cgroup has no 0:: line)");
  const std::string own_fs = t.mount_.fs_path(*own);
  if (own_fs.empty())
    return fail(ENOENT, "the daemon's cgroup " + *own + " is outside the cgroup2 mounted at " + t.mount_.mount_point);
  Fd own_fd(::open(own_fs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!own_fd) return fail(errno, describe("open " + own_fs, errno));

  // Which cgroup is BASE. Already in a supervisor leaf: an exec (upgrade) or a
  // restart of the same pid keeps its cgroup, and the subtree is ours already.
  if (*own != "/" && base_of(*own) == "supervisor") {
    t.base_path_ = parent_of(*own);
  } else {
    // Alone in a cgroup that is not the root: the unit's, delegated to us. (The
    // root may hold everything else; so may a login session's scope.)
    bool alone = false;
    if (*own != "/") {
      Result<std::string> procs = read_at(own_fd.get(), "cgroup.procs");
      if (!procs) return fail(procs.error(), describe("read " + own_fs + "/cgroup.procs", procs.error()));
      alone = *procs == std::to_string(::getpid()) + "\n";
    }
    t.base_path_ = alone ? *own : join(*own, base_name(key));
  }
  t.base_fs_ = t.mount_.fs_path(t.base_path_);
  t.created_ = base_of(t.base_path_) == base_name(key);
  if (t.created_ && ::mkdir(t.base_fs_.c_str(), 0755) != 0 && errno != EEXIST)
    return fail(errno, describe("mkdir " + t.base_fs_, errno));
  t.base_.reset(::open(t.base_fs_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!t.base_) return fail(errno, describe("open " + t.base_fs_, errno));

  // The daemon into its leaf before any controller is enabled: v2 refuses
  // subtree_control in a non-root cgroup that has processes of its own.
  if (::mkdirat(t.base_.get(), "supervisor", 0755) != 0 && errno != EEXIST)
    return fail(errno, describe("mkdir " + t.base_fs_ + "/supervisor", errno));
  {
    Fd sup(::openat(t.base_.get(), "supervisor", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!sup) return fail(errno, describe("open " + t.base_fs_ + "/supervisor", errno));
    // "0" is the writer: every thread of the daemon goes (cgroup.procs moves the
    // whole thread group, io_uring's workers included).
    if (Result<void> moved = write_at(sup.get(), "cgroup.procs", "0"); !moved)
      return fail(moved.error(), describe("move the daemon into " + t.base_fs_ + "/supervisor", moved.error()));
  }

  // What BASE offers, and what an earlier daemon (before an upgrade or a crash)
  // already turned on; the rest only when a limit needs it (enable()).
  auto words = [](Result<std::string> text) {
    std::vector<std::string> out;
    if (!text) return out;
    std::istringstream in(*text);
    for (std::string c; in >> c;) out.push_back(c);
    return out;
  };
  t.offered_ = words(read_at(t.base_.get(), "cgroup.controllers"));
  t.controllers_ = words(read_at(t.base_.get(), "cgroup.subtree_control"));
  return t;
}

void CgroupTree::enable(const std::vector<std::string_view>& needed) const {
  for (std::string_view c : needed) {
    if (std::find(controllers_.begin(), controllers_.end(), c) != controllers_.end()) continue;
    if (std::find(offered_.begin(), offered_.end(), c) == offered_.end()) continue;
    // One controller per write, so that one refusal does not cost the others.
    std::string word = "+";
    word += c;
    if (write_at(base_.get(), "cgroup.subtree_control", word)) controllers_.emplace_back(c);
  }
}

Result<Cgroup> CgroupTree::service(const std::string& name, std::string* detail) const {
  return Cgroup::create(base_.get(), base_path_, base_fs_, "svc." + name, detail);
}

std::optional<Cgroup> CgroupTree::service_of(pid_t pid) const {
  Result<std::string> path = cgroup_of(pid);
  if (!path || parent_of(*path) != base_path_) return std::nullopt;
  const std::string name = base_of(*path);
  if (name.compare(0, 4, "svc.") != 0) return std::nullopt;
  Result<Cgroup> c = Cgroup::open(base_.get(), base_path_, base_fs_, name);
  if (!c) return std::nullopt;
  return std::move(c).value();
}

void CgroupTree::release() {
  if (!created_ || !base_) return;
  const std::string parent_fs = mount_.fs_path(parent_of(base_path_));
  Fd parent(::open(parent_fs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent || !write_at(parent.get(), "cgroup.procs", "0")) return;
  // Deepest first: the svc.* (each empty once its instance was stopped), then
  // the daemon's leaf, then BASE. A populated one refuses (EBUSY) and stays.
  if (Fd dir{::dup(base_.get())}) {
    if (DIR* d = ::fdopendir(dir.release())) {
      while (dirent* e = ::readdir(d))
        if (e->d_type == DT_DIR && std::strncmp(e->d_name, "svc.", 4) == 0)
          (void)::unlinkat(base_.get(), e->d_name, AT_REMOVEDIR);
      ::closedir(d);
    }
  }
  (void)::unlinkat(base_.get(), "supervisor", AT_REMOVEDIR);
  base_.reset();
  (void)::rmdir(base_fs_.c_str());
}

}  // namespace runtime
