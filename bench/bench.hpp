#pragma once
// Shared pieces of dockless-bench: a row of the result table, the interleaved
// median measurement, and small timing helpers. Every figure is "higher is
// better" except where a Goal says "must equal".
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace bench {

struct Config {
  int runs = 5;
  bool quick = false;
  std::string self_exe;  // absolute path of this binary (re-executed as the pattern writer)
};

enum class Unit { rate, mib_per_s, count };

struct Goal {
  enum class Kind { none, ratio_at_least, value_at_most } kind = Kind::none;
  double bound = 0;
  static Goal none() { return {}; }
  static Goal ratio(double r) { return {Kind::ratio_at_least, r}; }
  static Goal at_most(double v) { return {Kind::value_at_most, v}; }
};

struct Row {
  std::string name;
  Unit unit = Unit::rate;
  std::vector<double> dockless;   // one figure per run
  std::vector<double> baseline;   // empty: no baseline
  std::string baseline_what;
  Goal goal;
  std::string note;               // printed under the table
};

double median(std::vector<double> v);

// A side of a comparison: one run, returning its figure. Errors throw
// std::runtime_error (a benchmark that cannot run is a start-up failure).
using Measure = std::function<double()>;

// Runs dockless and baseline alternately (A B A B ...) `runs` times, so slow drift
// of a noisy machine lands on both sides alike.
Row compare(std::string name, Unit unit, const Config& cfg, const Measure& dockless,
            std::string baseline_what, const Measure& baseline, Goal goal = Goal::none());

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

[[noreturn]] void fail(const std::string& what);          // throws runtime_error with strerror(errno)
[[noreturn]] void fail_errno(const std::string& what, int err);

// One file per benchmark; each returns its rows.
std::vector<Row> run_nop(const Config& cfg);
std::vector<Row> run_timer(const Config& cfg);
std::vector<Row> run_spawn(const Config& cfg);
std::vector<Row> run_splice(const Config& cfg);
std::vector<Row> run_idle(const Config& cfg);

// The child side of the splice benchmark (dockless-bench --write-pattern MIB).
int write_pattern_main(std::uint64_t mib);

}  // namespace bench
