// The resource limit keys: every key's accepted forms, its errors (text and position), and
// what the limits become for the cgroup.
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "test_inputs.hpp"

using config::MemoryLimit;
using config::ResourceLimits;

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;
constexpr std::uint64_t kGiB = 1024 * kMiB;

// The limits of [services.web] with `lines` added after its command.
ResourceLimits limits_of(const std::string& lines) {
  std::string text = "[services.web]\ncommand = \"web\"\n" + lines;
  auto r = config::parse_string(text, "config.toml", "/nonexistent", test_inputs());
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors.front().to_string());
  return r.ok() ? r.config->services.front().limits : ResourceLimits{};
}

// The errors of the same, as "file:line:col: message".
std::vector<std::string> errors_of(const std::string& lines) {
  std::string text = "[services.web]\ncommand = \"web\"\n" + lines;
  auto r = config::parse_string(text, "config.toml", "/nonexistent", test_inputs());
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.to_string());
  return out;
}

std::vector<std::string> one(std::string s) { return {std::move(s)}; }

}  // namespace

TEST(Limits, NoneByDefault) {
  ResourceLimits l = limits_of("");
  EXPECT_FALSE(l.any());
  EXPECT_FALSE(l.to_cgroup(8 * kGiB).any());
}

TEST(Limits, MemorySizes) {
  EXPECT_EQ(limits_of("memory_max = \"512M\"").memory_max, MemoryLimit::of_bytes(512 * kMiB));
  EXPECT_EQ(limits_of("memory_max = \"1.5G\"").memory_max, MemoryLimit::of_bytes(3 * kGiB / 2));
  EXPECT_EQ(limits_of("memory_swap_max = \"64KiB\"").memory_swap_max, MemoryLimit::of_bytes(64 * 1024));
  EXPECT_EQ(limits_of("memory_max = \"2GB\"").memory_max, MemoryLimit::of_bytes(2'000'000'000));
  EXPECT_EQ(limits_of("memory_max = 268435456").memory_max, MemoryLimit::of_bytes(256 * kMiB));
  EXPECT_EQ(limits_of("memory_max = \"268435456\"").memory_max, MemoryLimit::of_bytes(256 * kMiB));
  EXPECT_EQ(limits_of("memory_high = \"0.5G\"").memory_high, MemoryLimit::of_bytes(kGiB / 2));
  EXPECT_EQ(limits_of("memory_max = \"max\"").memory_max, MemoryLimit::unlimited());
  EXPECT_EQ(limits_of("memory_swap_max = 0").memory_swap_max, MemoryLimit::of_bytes(0));
  EXPECT_EQ(limits_of("memory_swap_max = \"max\"").memory_swap_max, MemoryLimit::unlimited());
}

TEST(Limits, MemoryPercentOfPhysical) {
  ResourceLimits l = limits_of("memory_max = \"50%\"\nmemory_high = \"12.5%\"");
  EXPECT_EQ(l.memory_max, MemoryLimit::percent(5000));
  EXPECT_EQ(l.memory_high, MemoryLimit::percent(1250));
  EXPECT_EQ(l.memory_max->text(), "50%");
  EXPECT_EQ(l.memory_high->text(), "12.5%");
  runtime::CgroupLimitValues v = l.to_cgroup(8 * kGiB);
  EXPECT_EQ(v.memory_max, 4 * kGiB);
  EXPECT_EQ(v.memory_high, kGiB);
  EXPECT_EQ(limits_of("memory_max = \"100%\"").to_cgroup(8 * kGiB).memory_max, 8 * kGiB);
}

TEST(Limits, MemoryErrors) {
  EXPECT_EQ(errors_of("memory_max = \"12X\""),
            one("config.toml:3:14: services.web.memory_max: \"12X\" is not a size; use e.g. \"512M\" or \"1G\", "
                "\"50%\" or \"max\""));
  EXPECT_EQ(errors_of("memory_swap_max = \"lots\""),
            one("config.toml:3:19: services.web.memory_swap_max: \"lots\" is not a size; use e.g. \"512M\" or "
                "\"1G\" or \"max\""));
  EXPECT_EQ(errors_of("memory_swap_max = \"50%\""),
            one("config.toml:3:19: services.web.memory_swap_max: a percentage is not accepted here; use a size "
                "such as \"512M\", or \"max\""));
  EXPECT_EQ(errors_of("memory_max = \"150%\""),
            one("config.toml:3:14: services.web.memory_max: \"150%\": a share of physical memory must be above "
                "0% and at most 100%"));
  EXPECT_EQ(errors_of("memory_max = \"0%\""),
            one("config.toml:3:14: services.web.memory_max: \"0%\": a share of physical memory must be above "
                "0% and at most 100%"));
  EXPECT_EQ(errors_of("memory_high = \"33.333%\""),
            one("config.toml:3:15: services.web.memory_high: \"33.333%\": use at most two decimals in a percentage"));
  EXPECT_EQ(errors_of("memory_max = 512"),
            one("config.toml:3:14: services.web.memory_max: must be at least 1MiB, got 512 bytes; a bare number "
                "is bytes: did you mean \"512M\"?"));
  EXPECT_EQ(errors_of("memory_high = \"100K\""),
            one("config.toml:3:15: services.web.memory_high: must be at least 1MiB, got 102400 bytes"));
  EXPECT_EQ(errors_of("memory_max = -1"), one("config.toml:3:14: services.web.memory_max: must not be negative"));
  EXPECT_EQ(errors_of("memory_max = true"),
            one("config.toml:3:14: services.web.memory_max: expected a size such as \"512M\", a percentage such "
                "as \"50%\", or \"max\", got boolean"));
  EXPECT_EQ(errors_of("memory_max = \"99999999999G\""),
            one("config.toml:3:14: services.web.memory_max: \"99999999999G\" is too large; use \"max\" for no limit"));
  EXPECT_EQ(errors_of("memory_max = \"1.G\""),
            one("config.toml:3:14: services.web.memory_max: \"1.G\" is not a size; use e.g. \"512M\" or \"1G\", "
                "\"50%\" or \"max\""));
}

TEST(Limits, MemoryHighAboveMax) {
  EXPECT_EQ(errors_of("memory_max = \"1G\"\nmemory_high = \"2G\""),
            one("config.toml:4:15: services.web.memory_high: \"2G\" is above memory_max \"1G\"; memory_high "
                "throttles the service below memory_max's hard limit, so it must not be higher"));
  EXPECT_EQ(errors_of("memory_high = \"60%\"\nmemory_max = \"50%\""),
            one("config.toml:3:15: services.web.memory_high: \"60%\" is above memory_max \"50%\"; memory_high "
                "throttles the service below memory_max's hard limit, so it must not be higher"));
  // Equal, below, "max" on either side, or a size against a share: accepted.
  EXPECT_TRUE(errors_of("memory_max = \"1G\"\nmemory_high = \"1G\"").empty());
  EXPECT_TRUE(errors_of("memory_max = \"1G\"\nmemory_high = \"768M\"").empty());
  EXPECT_TRUE(errors_of("memory_max = \"max\"\nmemory_high = \"768M\"").empty());
  EXPECT_TRUE(errors_of("memory_max = \"1G\"\nmemory_high = \"max\"").empty());
  EXPECT_TRUE(errors_of("memory_max = \"1G\"\nmemory_high = \"90%\"").empty());
}

TEST(Limits, CpuMax) {
  EXPECT_EQ(limits_of("cpu_max = \"50%\"").cpu_max_us, 50'000u);
  EXPECT_EQ(limits_of("cpu_max = \"150%\"").cpu_max_us, 150'000u);
  EXPECT_EQ(limits_of("cpu_max = \"12.5%\"").cpu_max_us, 12'500u);
  EXPECT_EQ(limits_of("cpu_max = \"1.5\"").cpu_max_us, 150'000u);
  EXPECT_EQ(limits_of("cpu_max = 1.5").cpu_max_us, 150'000u);
  EXPECT_EQ(limits_of("cpu_max = 2").cpu_max_us, 200'000u);
  EXPECT_EQ(limits_of("cpu_max = \"1%\"").cpu_max_us, 1'000u);
  EXPECT_EQ(limits_of("cpu_max = \"max\"").cpu_max_us, ResourceLimits::kMax);
  runtime::CgroupLimitValues v = limits_of("cpu_max = \"20%\"").to_cgroup(kGiB);
  ASSERT_TRUE(v.cpu_max);
  EXPECT_EQ(v.cpu_max->quota_us, 20'000u);
  EXPECT_EQ(v.cpu_max->period_us, 100'000u);
  EXPECT_EQ(config::cpu_max_text(50'000), "50%");
  EXPECT_EQ(config::cpu_max_text(12'500), "12.5%");
  EXPECT_EQ(config::cpu_max_text(150'000), "150%");
  EXPECT_EQ(config::cpu_max_text(ResourceLimits::kMax), "max");
}

TEST(Limits, CpuMaxErrors) {
  const std::string range = "is out of range; cpu_max must be between \"1%\" (\"0.01\" CPUs) and \"100000%\" (1000 CPUs), or \"max\"";
  EXPECT_EQ(errors_of("cpu_max = \"fast\""),
            one("config.toml:3:11: services.web.cpu_max: \"fast\" is not a CPU share; use e.g. \"50%\" of one CPU, "
                "\"1.5\" CPUs or \"max\""));
  EXPECT_EQ(errors_of("cpu_max = \"50 %\""),
            one("config.toml:3:11: services.web.cpu_max: \"50 %\" is not a CPU share; use e.g. \"50%\" of one "
                "CPU, \"1.5\" CPUs or \"max\""));
  EXPECT_EQ(errors_of("cpu_max = \"0.5%\""), one("config.toml:3:11: services.web.cpu_max: \"0.5%\" " + range));
  EXPECT_EQ(errors_of("cpu_max = \"0%\""), one("config.toml:3:11: services.web.cpu_max: \"0%\" " + range));
  EXPECT_EQ(errors_of("cpu_max = \"2000\""), one("config.toml:3:11: services.web.cpu_max: \"2000\" " + range));
  const std::string cpus = "is out of range; cpu_max must be between 0.01 and 1000 CPUs (\"1%\" to \"100000%\")";
  EXPECT_EQ(errors_of("cpu_max = 0"), one("config.toml:3:11: services.web.cpu_max: " + cpus));
  EXPECT_EQ(errors_of("cpu_max = -1.5"), one("config.toml:3:11: services.web.cpu_max: " + cpus));
  EXPECT_EQ(errors_of("cpu_max = inf"), one("config.toml:3:11: services.web.cpu_max: " + cpus));
  EXPECT_EQ(errors_of("cpu_max = [1]"),
            one("config.toml:3:11: services.web.cpu_max: expected a share of one CPU such as \"50%\", a number of "
                "CPUs such as 1.5, or \"max\", got array"));
}

TEST(Limits, Weights) {
  ResourceLimits l = limits_of("cpu_weight = 200\nio_weight = 1");
  EXPECT_EQ(l.cpu_weight, 200u);
  EXPECT_EQ(l.io_weight, 1u);
  EXPECT_EQ(limits_of("io_weight = 10000").io_weight, 10'000u);
  EXPECT_EQ(errors_of("cpu_weight = 0"),
            one("config.toml:3:14: services.web.cpu_weight: must be between 1 and 10000, got 0"));
  EXPECT_EQ(errors_of("io_weight = 10001"),
            one("config.toml:3:13: services.web.io_weight: must be between 1 and 10000, got 10001"));
  EXPECT_EQ(errors_of("cpu_weight = \"high\""),
            one("config.toml:3:14: services.web.cpu_weight: expected an integer, got string"));
}

TEST(Limits, PidsMax) {
  EXPECT_EQ(limits_of("pids_max = 64").pids_max, 64u);
  EXPECT_EQ(limits_of("pids_max = \"max\"").pids_max, ResourceLimits::kMax);
  EXPECT_EQ(errors_of("pids_max = 0"),
            one("config.toml:3:12: services.web.pids_max: must be between 1 and 4194304, got 0"));
  EXPECT_EQ(errors_of("pids_max = \"lots\""),
            one("config.toml:3:12: services.web.pids_max: \"lots\" is not a number of processes; use a positive "
                "integer or \"max\""));
  EXPECT_EQ(errors_of("pids_max = 1.5"),
            one("config.toml:3:12: services.web.pids_max: expected a positive integer or \"max\", got float"));
}

TEST(Limits, UnknownKeySuggestsLimit) {
  EXPECT_EQ(errors_of("memory_mx = \"1G\""),
            one("config.toml:3:1: unknown key \"memory_mx\" in [services.web]; did you mean \"memory_max\"?"));
  EXPECT_EQ(errors_of("pid_max = 10"),
            one("config.toml:3:1: unknown key \"pid_max\" in [services.web]; did you mean \"pids_max\"?"));
}

TEST(Limits, EveryErrorReportedTogether) {
  auto errors = errors_of("memory_max = \"1Q\"\ncpu_max = \"x\"\npids_max = 0\n");
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].substr(0, 16), "config.toml:3:14");
  EXPECT_EQ(errors[1].substr(0, 16), "config.toml:4:11");
  EXPECT_EQ(errors[2].substr(0, 16), "config.toml:5:12");
}

// A container runs in its engine's cgroup: its limits go in docker_args, and one given
// here is an error rather than a limit written nowhere.
TEST(Limits, RefusedForAContainer) {
  std::string text = "[services.db]\nimage = \"postgres:15\"\nmemory_max = \"1G\"\npids_max = 50\n";
  auto r = config::parse_string(text, "config.toml", "/nonexistent", test_inputs());
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].to_string(),
            "config.toml:3:14: services.db.memory_max: not for a container service, which runs in its engine's "
            "cgroup; give the engine's own flag in docker_args (e.g. \"--memory=512m --cpus=0.5 --pids-limit=100\")");
  EXPECT_EQ(r.errors[1].to_string().substr(0, 41), "config.toml:4:12: services.db.pids_max: n");
}

TEST(Limits, ToCgroupCarriesEveryKey) {
  ResourceLimits l = limits_of(
      "memory_max = \"1G\"\nmemory_high = \"768M\"\nmemory_swap_max = 0\ncpu_max = \"50%\"\n"
      "cpu_weight = 50\nio_weight = 300\npids_max = 100\n");
  runtime::CgroupLimitValues v = l.to_cgroup(4 * kGiB);
  EXPECT_EQ(v.memory_max, kGiB);
  EXPECT_EQ(v.memory_high, 768 * kMiB);
  EXPECT_EQ(v.memory_swap_max, 0u);
  EXPECT_EQ(v.cpu_max, (runtime::CgroupLimitValues::CpuMax{50'000, 100'000}));
  EXPECT_EQ(v.cpu_weight, 50u);
  EXPECT_EQ(v.io_weight, 300u);
  EXPECT_EQ(v.pids_max, 100u);
  EXPECT_EQ(limits_of("memory_max = \"max\"\npids_max = \"max\"").to_cgroup(kGiB).memory_max,
            runtime::CgroupLimitValues::kMax);
}

TEST(Limits, ValueParsers) {
  std::string why;
  EXPECT_EQ(config::parse_memory_limit("1.25G", false, &why), MemoryLimit::of_bytes(kGiB + kGiB / 4));
  EXPECT_EQ(config::parse_memory_limit("50%", false, &why), std::nullopt);
  EXPECT_EQ(config::parse_memory_limit("50%", true, &why), MemoryLimit::percent(5000));
  EXPECT_EQ(config::parse_cpu_max("0.25", &why), 25'000u);
  EXPECT_EQ(config::parse_cpu_max("", &why), std::nullopt);
  EXPECT_EQ(why, "\"\" is not a CPU share; use e.g. \"50%\" of one CPU, \"1.5\" CPUs or \"max\"");
}

// A reload needs to tell "only the limits differ" (apply them in place) from a change that
// restarts the service.
TEST(Limits, ClassifyChange) {
  auto spec = [](const std::string& lines) {
    std::string text = "[services.web]\ncommand = \"web\"\n" + lines;
    auto r = config::parse_string(text, "config.toml", "/nonexistent", test_inputs());
    EXPECT_TRUE(r.ok());
    return r.config->services.front();
  };
  using config::SpecChange;
  EXPECT_EQ(config::classify_change(spec("memory_max = \"1G\""), spec("memory_max = \"1G\"")), SpecChange::none);
  EXPECT_EQ(config::classify_change(spec(""), spec("memory_max = \"1G\"")), SpecChange::limits_only);
  EXPECT_EQ(config::classify_change(spec("memory_max = \"1G\""), spec("")), SpecChange::limits_only);
  EXPECT_EQ(config::classify_change(spec("cpu_max = \"50%\""), spec("cpu_max = \"20%\"\npids_max = 8")),
            SpecChange::limits_only);
  EXPECT_EQ(config::classify_change(spec("memory_max = \"1G\""), spec("memory_max = \"1024M\"")), SpecChange::none);
  EXPECT_EQ(config::classify_change(spec("memory_max = \"1G\""), spec("memory_max = \"2G\"\nstop_timeout = \"1s\"")),
            SpecChange::restart);
  EXPECT_EQ(config::classify_change(spec(""), spec("stop_timeout = \"1s\"")), SpecChange::restart);
  // A limit change still makes the specs differ: whatever does not classify restarts.
  EXPECT_FALSE(spec("memory_max = \"1G\"") == spec("memory_max = \"2G\""));
}
