// Resource limit keys: their value forms, their checks in a service table, and what they
// become for runtime::apply_limits.
#include "config/limits.hpp"

#include <cmath>
#include <limits>
#include <sstream>

#include "config/config.hpp"
#include "config/service_parse.hpp"

namespace config {
namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;
constexpr std::uint64_t kMaxPids = 4'194'304;  // the kernel's PID_MAX_LIMIT
// 1 % of one CPU is the kernel's smallest quota (1 ms); 1,000 CPUs is far past any machine.
constexpr std::uint64_t kMinCpuQuotaUs = 1'000;
constexpr std::uint64_t kMaxCpuQuotaUs = 1'000 * ResourceLimits::kCpuPeriodUs;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "12", "1.5", ".5" is not one: digits, optionally a dot and more digits. The value is
// whole + frac / 10^frac_digits; at most 6 decimals, so frac * any unit below stays in range.
struct Decimal {
  std::uint64_t whole = 0;
  std::uint64_t frac = 0;
  std::uint64_t frac_scale = 1;  // 10^frac_digits
};

std::optional<Decimal> read_decimal(std::string_view text, std::size_t* i) {
  Decimal d;
  std::size_t start = *i;
  while (*i < text.size() && is_digit(text[*i])) {
    auto digit = static_cast<std::uint64_t>(text[*i] - '0');
    if (d.whole > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
    d.whole = d.whole * 10 + digit;
    ++*i;
  }
  if (*i == start) return std::nullopt;
  if (*i < text.size() && text[*i] == '.') {
    ++*i;
    std::size_t frac_start = *i;
    while (*i < text.size() && is_digit(text[*i])) {
      if (d.frac_scale == 1'000'000) return std::nullopt;
      d.frac = d.frac * 10 + static_cast<std::uint64_t>(text[*i] - '0');
      d.frac_scale *= 10;
      ++*i;
    }
    if (*i == frac_start) return std::nullopt;
  }
  return d;
}

// d * scale, the fraction rounded down; nullopt on overflow.
std::optional<std::uint64_t> times(const Decimal& d, std::uint64_t scale) {
  if (scale != 0 && d.whole > std::numeric_limits<std::uint64_t>::max() / scale) return std::nullopt;
  std::uint64_t whole = d.whole * scale;
  std::uint64_t part = d.frac * scale / d.frac_scale;  // frac < 10^6 and scale <= 2^30: no overflow
  if (part > std::numeric_limits<std::uint64_t>::max() - whole) return std::nullopt;
  return whole + part;
}

// scaled / scale in decimal, trailing zeros dropped: (125, 10) → "12.5", (5000, 100) → "50".
std::string fixed(std::uint64_t scaled, std::uint64_t scale) {
  std::string out = std::to_string(scaled / scale);
  std::uint64_t rem = scaled % scale;
  if (rem == 0) return out;
  std::string frac = std::to_string(scale + rem).substr(1);  // zero-padded
  while (frac.back() == '0') frac.pop_back();
  out.push_back('.');
  return out.append(frac);
}

using detail::quote;

// A limit's value as the config spells it, for messages: 1073741824 or "1G".
std::string as_written(const toml::node& n) {
  if (const auto* s = n.as_string()) return quote(s->get());
  if (const auto* i = n.as_integer()) return std::to_string(i->get());
  return "?";
}

}  // namespace

std::uint64_t MemoryLimit::resolve(std::uint64_t physical) const {
  switch (kind) {
    case Kind::bytes: return bytes;
    case Kind::max: return ResourceLimits::kMax;
    case Kind::percent:
      // Split so that physical * hundredths cannot overflow. sysconf(_SC_PHYS_PAGES) does not
      // fail on Linux; were it 0, a share of it would be 0 bytes and OOM-kill at once.
      if (physical == 0) return ResourceLimits::kMax;
      return physical / 10'000 * hundredths + physical % 10'000 * hundredths / 10'000;
  }
  return ResourceLimits::kMax;
}

std::string MemoryLimit::text() const {
  switch (kind) {
    case Kind::bytes: return std::to_string(bytes);
    case Kind::max: return "max";
    case Kind::percent: return fixed(hundredths, 100) + "%";
  }
  return "max";
}

std::string cpu_max_text(std::uint64_t quota_us) {
  if (quota_us == ResourceLimits::kMax) return "max";
  // 1,000 µs per 100 ms period is 1 %.
  return fixed(quota_us, ResourceLimits::kCpuPeriodUs / 100) + "%";
}

bool ResourceLimits::any() const {
  return memory_max || memory_high || memory_swap_max || cpu_max_us || cpu_weight || io_weight || pids_max;
}

std::string ResourceLimits::fingerprint() const {
  std::ostringstream out;
  auto mem = [&](std::string_view key, const std::optional<MemoryLimit>& m) {
    if (m) out << key << '=' << m->text() << ';';
  };
  mem("memory_max", memory_max);
  mem("memory_high", memory_high);
  mem("memory_swap_max", memory_swap_max);
  if (cpu_max_us) out << "cpu_max=" << *cpu_max_us << ';';
  if (cpu_weight) out << "cpu_weight=" << *cpu_weight << ';';
  if (io_weight) out << "io_weight=" << *io_weight << ';';
  if (pids_max) out << "pids_max=" << *pids_max << ';';
  return out.str();
}

runtime::CgroupLimitValues ResourceLimits::to_cgroup(std::uint64_t physical_memory) const {
  runtime::CgroupLimitValues v;
  auto mem = [&](const std::optional<MemoryLimit>& m) -> std::optional<std::uint64_t> {
    if (!m) return std::nullopt;
    return m->resolve(physical_memory);
  };
  v.memory_max = mem(memory_max);
  v.memory_high = mem(memory_high);
  v.memory_swap_max = mem(memory_swap_max);
  if (cpu_max_us) v.cpu_max = runtime::CgroupLimitValues::CpuMax{*cpu_max_us, kCpuPeriodUs};
  v.cpu_weight = cpu_weight;
  v.io_weight = io_weight;
  v.pids_max = pids_max;
  return v;
}

std::optional<MemoryLimit> parse_memory_limit(std::string_view text, bool allow_percent, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<MemoryLimit> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  const std::string not_a_size =
      quote(text) + " is not a size; use e.g. \"512M\" or \"1G\"" + (allow_percent ? ", \"50%\"" : "") + " or \"max\"";
  if (text == "max") return MemoryLimit::unlimited();
  std::size_t i = 0;
  std::optional<Decimal> d = read_decimal(text, &i);
  if (!d) return fail(not_a_size);
  std::string_view unit = text.substr(i);
  if (unit == "%") {
    if (!allow_percent) return fail("a percentage is not accepted here; use a size such as \"512M\", or \"max\"");
    if (d->frac_scale > 100) return fail(quote(text) + ": use at most two decimals in a percentage");
    std::optional<std::uint64_t> h = times(*d, 100);
    if (!h || *h == 0 || *h > 10'000)
      return fail(quote(text) + ": a share of physical memory must be above 0% and at most 100%");
    return MemoryLimit::percent(static_cast<std::uint32_t>(*h));
  }
  // The units are parse_size's (K = KiB = 1024, KB = 1000, ...): what "1" of the unit is.
  std::string one = "1";
  one.append(unit);
  std::optional<std::uint64_t> scale = parse_size(one, nullptr);
  if (!scale) return fail(not_a_size);
  std::optional<std::uint64_t> bytes = times(*d, *scale);
  if (!bytes || *bytes == ResourceLimits::kMax) return fail(quote(text) + " is too large; use \"max\" for no limit");
  return MemoryLimit::of_bytes(*bytes);
}

std::optional<std::uint64_t> parse_cpu_max(std::string_view text, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<std::uint64_t> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  if (text == "max") return ResourceLimits::kMax;
  std::size_t i = 0;
  std::optional<Decimal> d = read_decimal(text, &i);
  std::string_view rest = d ? text.substr(i) : text;
  if (!d || (!rest.empty() && rest != "%"))
    return fail(quote(text) + " is not a CPU share; use e.g. \"50%\" of one CPU, \"1.5\" CPUs or \"max\"");
  // "%": of one CPU, whose whole is kCpuPeriodUs per period; else a number of CPUs.
  const std::uint64_t unit = rest == "%" ? ResourceLimits::kCpuPeriodUs / 100 : ResourceLimits::kCpuPeriodUs;
  std::optional<std::uint64_t> quota = times(*d, unit);
  if (!quota || *quota < kMinCpuQuotaUs || *quota > kMaxCpuQuotaUs)
    return fail(quote(text) + " is out of range; cpu_max must be between \"1%\" (\"0.01\" CPUs) and \"100000%\" "
                               "(1000 CPUs), or \"max\"");
  return quota;
}

SpecChange classify_change(const ServiceSpec& running, const ServiceSpec& next) {
  if (running == next) return SpecChange::none;
  ServiceSpec same_limits = running;
  same_limits.limits = next.limits;
  return same_limits == next ? SpecChange::limits_only : SpecChange::restart;
}

}  // namespace config

namespace config::detail {

std::optional<MemoryLimit> ServiceParser::memory_limit(std::string_view key, bool allow_percent) {
  const toml::node* n = r_.find(key);
  if (!n) return std::nullopt;
  std::optional<MemoryLimit> m;
  if (const auto* i = n->as_integer()) {
    if (i->get() < 0) {
      r_.error(*n, key, "must not be negative");
      return std::nullopt;
    }
    m = MemoryLimit::of_bytes(static_cast<std::uint64_t>(i->get()));
  } else if (const auto* s = n->as_string()) {
    std::string why;
    m = parse_memory_limit(s->get(), allow_percent, &why);
    if (!m) {
      r_.error(*n, key, why);
      return std::nullopt;
    }
  } else {
    r_.type_error(*n, key, allow_percent ? "a size such as \"512M\", a percentage such as \"50%\", or \"max\""
                                         : "a size such as \"512M\", or \"max\"");
    return std::nullopt;
  }
  // Below 1 MiB no program even starts: most likely megabytes meant and bytes written.
  if (key != "memory_swap_max" && m->kind == MemoryLimit::Kind::bytes && m->bytes < kMiB) {
    std::string got = std::to_string(m->bytes);
    r_.error(*n, key, "must be at least 1MiB, got " + got + " bytes" +
                          (n->is_integer() ? "; a bare number is bytes: did you mean \"" + got + "M\"?" : ""));
    return std::nullopt;
  }
  return m;
}

void ServiceParser::limits() {
  ResourceLimits& l = spec_.limits;
  l.memory_max = memory_limit("memory_max", true);
  l.memory_high = memory_limit("memory_high", true);
  l.memory_swap_max = memory_limit("memory_swap_max", false);
  // Comparable when written alike (two sizes, two shares); a size against a share depends on
  // the machine, and the kernel accepts memory.high above memory.max (it never throttles).
  if (l.memory_max && l.memory_high && l.memory_max->kind == l.memory_high->kind &&
      l.memory_high->kind != MemoryLimit::Kind::max &&
      l.memory_high->resolve(10'000) > l.memory_max->resolve(10'000)) {
    r_.error(*r_.find("memory_high"), "memory_high",
             as_written(*r_.find("memory_high")) + " is above memory_max " + as_written(*r_.find("memory_max")) +
                 "; memory_high throttles the service below memory_max's hard limit, so it must not be higher");
    l.memory_high.reset();
  }
  if (const toml::node* n = r_.find("cpu_max")) {
    std::string why;
    if (const auto* s = n->as_string()) {
      l.cpu_max_us = parse_cpu_max(s->get(), &why);
    } else if (n->is_integer() || n->is_floating_point()) {
      // A bare number is CPUs (2, 1.5); through the string parser for one range check.
      double cpus = n->is_integer() ? static_cast<double>(n->as_integer()->get()) : n->as_floating_point()->get();
      if (std::isfinite(cpus) && cpus >= 0 && cpus <= 1e6) {
        std::ostringstream text;
        text.precision(6);
        text << std::fixed << cpus;
        l.cpu_max_us = parse_cpu_max(text.str(), &why);
        if (!l.cpu_max_us) why = "is out of range; cpu_max must be between 0.01 and 1000 CPUs (\"1%\" to \"100000%\")";
      } else {
        why = "is out of range; cpu_max must be between 0.01 and 1000 CPUs (\"1%\" to \"100000%\")";
      }
    } else {
      r_.type_error(*n, "cpu_max", "a share of one CPU such as \"50%\", a number of CPUs such as 1.5, or \"max\"");
    }
    if (!why.empty()) r_.error(*n, "cpu_max", why);
  }
  for (auto [key, field] : {std::pair{"cpu_weight", &l.cpu_weight}, std::pair{"io_weight", &l.io_weight}})
    if (auto v = r_.integer(key, 1, 10'000)) *field = static_cast<std::uint32_t>(*v);
  if (const toml::node* n = r_.find("pids_max")) {
    if (n->is_string() && n->as_string()->get() == "max") l.pids_max = ResourceLimits::kMax;
    else if (n->is_integer()) {
      if (auto v = r_.integer("pids_max", 1, static_cast<std::int64_t>(kMaxPids))) l.pids_max = static_cast<std::uint64_t>(*v);
    } else if (n->is_string()) {
      r_.error(*n, "pids_max", quote(n->as_string()->get()) + " is not a number of processes; use a positive integer or \"max\"");
    } else {
      r_.type_error(*n, "pids_max", "a positive integer or \"max\"");
    }
  }
  // A container runs in its engine's cgroup, not in one of ours: a limit here would be
  // written nowhere, and a limit is never silently ignored.
  if (r_.find("image")) {
    for (std::string_view key : {"memory_max", "memory_high", "memory_swap_max", "cpu_max", "cpu_weight", "pids_max",
                                 "io_weight"}) {
      if (const toml::node* n = r_.find(key))
        r_.error(*n, key,
                 "not for a container service, which runs in its engine's cgroup; give the engine's own flag in "
                 "docker_args (e.g. \"--memory=512m --cpus=0.5 --pids-limit=100\")");
    }
    l = ResourceLimits{};
  }
}

}  // namespace config::detail
