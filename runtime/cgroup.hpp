#pragma once
// cgroup v2 containment: every service instance in a cgroup of its own, so that a
// stop reaches whatever it forked, setsid or not. The daemon's subtree:
//   BASE/                  the unit's delegated cgroup (Delegate=yes), or a child of the
//                          daemon's own cgroup, "dockless.<hash of data_dir>", created
//   BASE/supervisor        the daemon itself (a leaf: v2 allows no processes in a
//                          cgroup whose subtree_control enables controllers)
//   BASE/svc.NAME          one per native service instance
// Everything is reached through directory fds (openat, O_CLOEXEC). cgroupfs is
// in-memory, so its reads and writes are plain blocking calls, kept out of hot loops.
// No cgroup2 (v1-only host, no delegation, read-only): CgroupTree::setup fails with
// the reason, and supervision keeps to process groups.
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/fd.hpp"
#include "runtime/result.hpp"
#include "runtime/task.hpp"

namespace runtime {

// The first cgroup2 mount of /proc/self/mountinfo: where it is, and which path of
// the hierarchy it shows (its "root", "/" unless mounted from a sub-cgroup).
struct Cgroup2Mount {
  std::string mount_point;  // "/sys/fs/cgroup" (pure v2), "/sys/fs/cgroup/unified" (hybrid)
  std::string root;         // "/"
  // The directory of the hierarchy path `path`; empty when the mount does not show it.
  std::string fs_path(const std::string& path) const;
};
// ENOENT when no cgroup2 is mounted.
Result<Cgroup2Mount> find_cgroup2_mount(const std::string& mountinfo = "/proc/self/mountinfo");
// The v2 entry ("0::/path") of /proc/PID/cgroup (0: this process): "/path".
// ENOENT when there is none (a v1-only host).
Result<std::string> cgroup_of(pid_t pid = 0);

// One cgroup directory, e.g. a service's BASE/svc.NAME. Movable; never removes the
// directory by itself (remove() does, when the owner knows it is empty).
class Cgroup {
 public:
  // mkdir `name` under `parent_fd` (an existing one is reused) and opens it.
  // `parent_path`/`parent_fs` name the parent in the hierarchy and the filesystem.
  static Result<Cgroup> create(int parent_fd, const std::string& parent_path, const std::string& parent_fs,
                               const std::string& name, std::string* detail = nullptr);
  // Opens an existing one.
  static Result<Cgroup> open(int parent_fd, const std::string& parent_path, const std::string& parent_fs,
                             const std::string& name, std::string* detail = nullptr);

  Cgroup(Cgroup&&) noexcept = default;
  Cgroup& operator=(Cgroup&&) noexcept = default;

  // The directory fd: runtime::SpawnOptions::cgroup_fd, and where limits are written.
  int fd() const noexcept { return dir_.get(); }
  const std::string& path() const noexcept { return path_; }        // "/dockless.1a2b/svc.web"
  const std::string& fs_path() const noexcept { return fs_path_; }  // "/sys/fs/cgroup/unified/dockless.1a2b/svc.web"

  // cgroup.procs: the processes in this cgroup (not its descendants).
  Result<std::vector<pid_t>> members() const;
  // `sig` to every member but process group `skip_group` and the process of that
  // pid (its leader, signalled already with the group or through its pidfd): a
  // second SIGINT would land in the middle of the first one's handler. 0 skips
  // nothing. Members gone meanwhile are no error.
  Result<void> signal_members(int sig, pid_t skip_group = 0) const;
  // cgroup.events' "populated": a member here or in any descendant.
  Result<bool> populated() const;
  // SIGKILL to everything in it and below: cgroup.kill (kernel >= 5.14), else
  // freeze, SIGKILL every member, thaw (a frozen cgroup cannot fork past the kill).
  Result<void> kill() const;
  // kill()'s way before cgroup.kill (5.14); callable on its own so that it is
  // exercised on kernels that have cgroup.kill too.
  Result<void> kill_frozen() const;
  // Resolves once nothing is left in it (cgroup.events polled through the ring:
  // the kernel flags the file with POLLPRI on every change). ETIME after `limit`,
  // ECANCELED on stop.
  Task<Result<void>> wait_empty(std::chrono::milliseconds limit, std::stop_token stop = {}) const;
  // rmdir through the parent fd; ENOENT is success. EBUSY while populated.
  Result<void> remove();

 private:
  Cgroup() = default;
  Fd parent_;
  Fd dir_;
  std::string name_, path_, fs_path_;
};

// The daemon's subtree (see the top of this file).
class CgroupTree {
 public:
  // Finds the cgroup2 mount and the daemon's own cgroup, picks BASE, moves the
  // daemon into BASE/supervisor and enables in BASE what BASE offers. BASE is the
  // daemon's own cgroup when the daemon is alone in it (and it is not the root),
  // its parent when the daemon already sits in a "supervisor" (an upgrade's exec
  // or a restart in place), else a child "dockless.<hash of key>" (pass the
  // canonical data_dir: stable across restarts, distinct between daemons).
  // A failure (ENOENT: no cgroup2; EACCES/EPERM/EROFS: not ours to write) comes
  // back with `reason` in words.
  static Result<CgroupTree> setup(const std::string& key, std::string* reason);

  CgroupTree(CgroupTree&&) noexcept = default;
  CgroupTree& operator=(CgroupTree&&) noexcept = default;

  const std::string& mount_point() const noexcept { return mount_.mount_point; }
  const std::string& base_path() const noexcept { return base_path_; }  // in the hierarchy
  const std::string& base_fs_path() const noexcept { return base_fs_; }
  int base_fd() const noexcept { return base_.get(); }
  // Controllers enabled in BASE/cgroup.subtree_control (those a svc.NAME can use).
  const std::vector<std::string>& controllers() const noexcept { return controllers_; }
  // Controllers BASE/cgroup.controllers offers (what enable() can turn on).
  const std::vector<std::string>& offered() const noexcept { return offered_; }
  // Turns on in BASE/cgroup.subtree_control each of `needed` that is offered and not
  // on yet. Only when a service's limits need them, never at setup: with a controller
  // on in the unit's own cgroup, systemd before 254 cannot put a restarted daemon back
  // into that cgroup while services survived its crash (status 219/CGROUP; the
  // kernel refuses processes in a cgroup that enables controllers for its children).
  // Placement and cgroup.kill need no controller. A refusal is left for
  // check_controllers to name; controllers_ lists what is on.
  void enable(const std::vector<std::string_view>& needed) const;
  // True when BASE is a "dockless.<hash>" this daemon (or its predecessor) made.
  bool created_base() const noexcept { return created_; }

  // BASE/svc.NAME, created when missing.
  Result<Cgroup> service(const std::string& name, std::string* detail = nullptr) const;
  // The svc.* cgroup directly under BASE that `pid` sits in (an adopted instance).
  std::optional<Cgroup> service_of(pid_t pid) const;
  // The daemon's clean exit (not an upgrade's exec): when BASE was created, moves
  // the daemon back to BASE's parent and removes the empty svc.*, supervisor and
  // BASE. A cgroup still populated stays.
  void release();

  // "dockless.<12 hex digits>" for `key`.
  static std::string base_name(const std::string& key);

 private:
  CgroupTree() = default;
  Cgroup2Mount mount_;
  Fd base_;
  std::string base_path_, base_fs_;
  // Mutable: enable() is the one change, made on demand by const users (the
  // executors hold the tree const), on the loop thread only.
  mutable std::vector<std::string> controllers_;
  std::vector<std::string> offered_;
  bool created_ = false;
};

}  // namespace runtime
