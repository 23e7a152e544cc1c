#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <algorithm>

#include "bench.hpp"
#include "ring_loop.hpp"

namespace bench {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

Row compare(std::string name, Unit unit, const Config& cfg, const Measure& dockless,
            std::string baseline_what, const Measure& baseline, Goal goal) {
  Row row;
  row.name = std::move(name);
  row.unit = unit;
  row.baseline_what = std::move(baseline_what);
  row.goal = goal;
  for (int i = 0; i < cfg.runs; ++i) {
    row.dockless.push_back(dockless());
    if (baseline) row.baseline.push_back(baseline());
  }
  return row;
}

void fail(const std::string& what) { fail_errno(what, errno); }

void fail_errno(const std::string& what, int err) {
  throw std::runtime_error(what + ": " + std::strerror(err));
}

unsigned reactor_setup_flags() {
  static const unsigned flags = [] {
    runtime::Reactor r;
    return r.features().setup_flags;
  }();
  return flags;
}

}  // namespace bench
