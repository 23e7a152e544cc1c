// dockless-bench: runs every runtime benchmark in one process and prints one
// table, each figure next to a baseline measured in the same run (interleaved,
// median of --runs), with the ratio and the goal. See bench/README.md.
#include <sys/utsname.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "bench.hpp"
#include "runtime/reactor.hpp"

namespace {

using bench::Row;
using bench::Unit;

struct Entry {
  const char* name;
  std::vector<Row> (*run)(const bench::Config&);
};
constexpr Entry kBenchmarks[] = {
    {"nop", bench::run_nop},       {"timer", bench::run_timer}, {"spawn", bench::run_spawn},
    {"splice", bench::run_splice}, {"idle", bench::run_idle},
};

void usage(std::FILE* to) {
  std::fprintf(to,
               "usage: dockless-bench [--quick] [--runs N] [--only NAME] [--json FILE]\n"
               "  --quick      short run (CI): smaller counts, 3 runs unless --runs\n"
               "  --runs N     repetitions per measurement; the median is reported (default 5)\n"
               "  --only NAME  one benchmark: nop, timer, spawn, splice, idle\n"
               "  --json FILE  also write every figure (all runs) as JSON\n");
}

std::string read_first_line_with(const char* path, const char* key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) {
      auto colon = line.find(':');
      if (colon == std::string::npos) return line;
      auto v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  return {};
}

// x86 names the CPU in "model name"; a Raspberry Pi's cpuinfo has "Model" (the
// board) and the device tree has the same; other ARM boards only "CPU part".
std::string cpu_model() {
  for (const char* key : {"model name", "Model", "Hardware", "CPU part"}) {
    std::string v = read_first_line_with("/proc/cpuinfo", key);
    if (!v.empty()) return v;
  }
  std::ifstream dt("/proc/device-tree/model");
  std::string v;
  std::getline(dt, v, '\0');
  return v.empty() ? "unknown" : v;
}

std::string format_value(double v, Unit unit) {
  char buf[64];
  switch (unit) {
    case Unit::rate:
      if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.2f M/s", v / 1e6);
      else if (v >= 1e4) std::snprintf(buf, sizeof buf, "%.1f k/s", v / 1e3);
      else std::snprintf(buf, sizeof buf, "%.0f /s", v);
      break;
    case Unit::mib_per_s:
      std::snprintf(buf, sizeof buf, "%.0f MiB/s", v);
      break;
    case Unit::count:
      std::snprintf(buf, sizeof buf, "%.0f", v);
      break;
  }
  return buf;
}

struct Summary {
  double dockless = 0, baseline = 0, ratio = NAN;
  std::string goal = "-", status = "-";
};

Summary summarize(const Row& r) {
  Summary s;
  s.dockless = bench::median(r.dockless);
  if (!r.baseline.empty()) {
    s.baseline = bench::median(r.baseline);
    if (s.baseline > 0) s.ratio = s.dockless / s.baseline;
  }
  char buf[32];
  switch (r.goal.kind) {
    case bench::Goal::Kind::none:
      break;
    case bench::Goal::Kind::ratio_at_least:
      std::snprintf(buf, sizeof buf, ">= %.1fx", r.goal.bound);
      s.goal = buf;
      s.status = !std::isnan(s.ratio) && s.ratio >= r.goal.bound ? "ok" : "MISS";
      break;
    case bench::Goal::Kind::value_at_most:
      std::snprintf(buf, sizeof buf, "%s%.0f", r.goal.bound == 0 ? "" : "<= ", r.goal.bound);
      s.goal = buf;
      s.status = s.dockless <= r.goal.bound ? "ok" : "MISS";
      break;
  }
  return s;
}

void print_table(const std::vector<Row>& rows, int runs) {
  std::size_t name_w = 9, what_w = 0;
  for (const Row& r : rows) {
    name_w = std::max(name_w, r.name.size());
    what_w = std::max(what_w, r.baseline_what.size());
  }
  const int nw = static_cast<int>(name_w) + 2;
  const int bw = static_cast<int>(what_w) + 16;
  std::printf("\n%-*s %-14s %-*s %-7s %-8s %s\n", nw, "benchmark", "dockless", bw,
              "baseline (what)", "ratio", "goal", "status");
  for (const Row& r : rows) {
    const Summary s = summarize(r);
    std::string base = "-";
    if (!r.baseline.empty()) base = format_value(s.baseline, r.unit) + " (" + r.baseline_what + ")";
    char ratio[16] = "-";
    if (!std::isnan(s.ratio)) std::snprintf(ratio, sizeof ratio, "%.2fx", s.ratio);
    std::printf("%-*s %-14s %-*s %-7s %-8s %s\n", nw, r.name.c_str(),
                format_value(s.dockless, r.unit).c_str(), bw, base.c_str(), ratio, s.goal.c_str(),
                s.status.c_str());
  }
  std::printf("\nmedians of %d interleaved runs (dockless, baseline, dockless, ...)\n", runs);
  for (const Row& r : rows)
    if (!r.note.empty()) std::printf("  %s\n", r.note.c_str());
}

nlohmann::json to_json(const std::vector<Row>& rows) {
  auto unit_name = [](Unit u) {
    return u == Unit::rate ? "per_second" : u == Unit::mib_per_s ? "mib_per_second" : "count";
  };
  nlohmann::json out = nlohmann::json::array();
  for (const Row& r : rows) {
    const Summary s = summarize(r);
    nlohmann::json j = {{"name", r.name},         {"unit", unit_name(r.unit)},
                        {"dockless", s.dockless}, {"dockless_runs", r.dockless},
                        {"goal", s.goal},         {"status", s.status}};
    if (!r.baseline.empty()) {
      j["baseline"] = s.baseline;
      j["baseline_runs"] = r.baseline;
      j["baseline_what"] = r.baseline_what;
      j["ratio"] = std::isnan(s.ratio) ? nlohmann::json(nullptr) : nlohmann::json(s.ratio);
    }
    if (!r.note.empty()) j["note"] = r.note;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

// An exception escaping a benchmark ends it through std::terminate, which prints it: fine for a bench.
int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape)
  // Re-executed as the splice benchmark's writer child.
  if (argc == 3 && std::strcmp(argv[1], "--write-pattern") == 0)
    return bench::write_pattern_main(std::strtoull(argv[2], nullptr, 10));

  bench::Config cfg;
  bool runs_given = false;
  std::string only, json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage(stderr);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick") cfg.quick = true;
    else if (a == "--runs") {
      cfg.runs = std::atoi(next().c_str());
      runs_given = true;
      if (cfg.runs < 1) {
        usage(stderr);
        return 2;
      }
    } else if (a == "--only") only = next();
    else if (a == "--json") json_path = next();
    else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (cfg.quick && !runs_given) cfg.runs = 3;
  bool known = only.empty();
  for (const Entry& e : kBenchmarks) known |= only == e.name;
  if (!known) {
    std::fprintf(stderr, "dockless-bench: no benchmark named '%s'\n", only.c_str());
    usage(stderr);
    return 2;
  }

  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    std::perror("readlink /proc/self/exe");
    return 1;
  }
  cfg.self_exe.assign(self, static_cast<std::size_t>(n));

  std::string features;
  try {
    runtime::Reactor probe;
    features = probe.features().describe();
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "dockless-bench: no io_uring here (%s); skipping\n", e.what());
    return 77;
  }
  utsname u{};
  ::uname(&u);
  const std::string cpu = cpu_model();
  const long nproc = ::sysconf(_SC_NPROCESSORS_ONLN);
  std::printf("dockless-bench %s\nkernel:  %s %s %s\ncpu:     %s, nproc %ld\nreactor: %s\n",
              cfg.quick ? "(quick)" : "", u.sysname, u.release, u.machine, cpu.c_str(), nproc,
              features.c_str());
  std::fflush(stdout);

  std::vector<Row> rows;
  nlohmann::json errors = nlohmann::json::array();
  const auto t0 = bench::Clock::now();
  for (const Entry& e : kBenchmarks) {
    if (!only.empty() && only != e.name) continue;
    std::fprintf(stderr, "running %s ...\n", e.name);
    try {
      for (Row& r : e.run(cfg)) rows.push_back(std::move(r));
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "dockless-bench: %s failed: %s\n", e.name, ex.what());
      errors.push_back({{"benchmark", e.name}, {"error", ex.what()}});
    }
  }
  print_table(rows, cfg.runs);
  std::printf("total %.0f s\n", bench::seconds_since(t0));

  if (!json_path.empty()) {
    nlohmann::json doc = {
        {"machine",
         {{"kernel", u.release}, {"arch", u.machine}, {"cpu", cpu}, {"nproc", nproc},
          {"reactor", features}}},
        {"runs", cfg.runs},
        {"quick", cfg.quick},
        {"results", to_json(rows)},
        {"errors", errors}};
    std::ofstream out(json_path);
    out << doc.dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "dockless-bench: cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
  return errors.empty() ? 0 : 1;
}
