// GET /metrics: Prometheus text exposition format 0.0.4.
#include <algorithm>
#include <optional>
#include <sstream>

#include "actors/log_store.hpp"
#include "actors/proc_stats.hpp"
#include "actors/service_limits.hpp"
#include "http/api/handlers.hpp"
#include "runtime/reactor.hpp"
#include "runtime/clock.hpp"

namespace http::api {

namespace {

// Label values escape backslash, quote and newline (the format's only escapes).
std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

struct Writer {
  std::ostringstream out;
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  template <class V>
  void sample(std::string_view name, const std::string& labels, V value) {
    out << name;
    if (!labels.empty()) out << '{' << labels << '}';
    out << ' ' << value << '\n';
  }
};

std::string svc(const std::string& name) { return "service=\"" + label(name) + "\""; }

Response metrics(ApiContext& ctx) {
  std::vector<actors::ServiceStatus> all = ctx.supervisor->list();
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  struct Proc {
    std::optional<actors::ProcStats> stats;
    std::optional<runtime::CgroupUsage> cgroup;  // the whole instance, children included
  };
  std::vector<Proc> procs;
  procs.reserve(all.size());
  for (const auto& s : all)
    procs.push_back({s.pid ? ctx.proc_stats.get(*s.pid, s.pid_start_ticks) : std::nullopt,
                     cgroup_usage(s, ctx.supervisor->cgroups())});
  const std::int64_t now = runtime::now_unix_ms();

  Writer w;
  w.out.precision(15);
  w.family("dockless_service_up", "gauge", "1 when the service's process is running.");
  for (const auto& s : all) w.sample("dockless_service_up", svc(s.name), s.state == actors::State::running ? 1 : 0);
  w.family("dockless_service_state", "gauge", "1 for the service's current state.");
  for (const auto& s : all)
    for (actors::State st : actors::kAllStates)
      w.sample("dockless_service_state", svc(s.name) + ",state=\"" + std::string(actors::to_string(st)) + "\"",
               s.state == st ? 1 : 0);
  w.family("dockless_service_restarts_total", "counter", "Automatic restarts of the service.");
  for (const auto& s : all) w.sample("dockless_service_restarts_total", svc(s.name), s.restarts);
  w.family("dockless_service_uptime_seconds", "gauge", "Seconds since the current process started (0 when none).");
  for (const auto& s : all) {
    double up = 0;
    if (s.pid && s.started_at) {
      const auto ms = runtime::unix_ms(*s.started_at);
      up = static_cast<double>(now - ms) / 1000.0;
    }
    w.sample("dockless_service_uptime_seconds", svc(s.name), up);
  }
  w.family("dockless_service_cpu_seconds_total", "counter", "User+system CPU time of the main process.");
  for (std::size_t i = 0; i < all.size(); ++i)
    if (procs[i].stats) w.sample("dockless_service_cpu_seconds_total", svc(all[i].name), procs[i].stats->cpu_seconds);
  w.family("dockless_service_memory_rss_bytes", "gauge", "Resident memory of the main process.");
  for (std::size_t i = 0; i < all.size(); ++i)
    if (procs[i].stats) w.sample("dockless_service_memory_rss_bytes", svc(all[i].name), procs[i].stats->rss_bytes);
  // From the instance's cgroup; a figure whose file the cgroup lacks is left out.
  auto cgroup_family = [&](std::string_view name, std::string_view type, std::string_view help, auto get) {
    w.family(name, type, help);
    for (std::size_t i = 0; i < all.size(); ++i)
      if (procs[i].cgroup)
        if (const auto v = get(*procs[i].cgroup)) w.sample(name, svc(all[i].name), *v);
  };
  cgroup_family("dockless_service_cgroup_memory_bytes", "gauge", "memory.current of the service's cgroup.",
                [](const runtime::CgroupUsage& u) { return u.memory_current; });
  cgroup_family("dockless_service_cgroup_memory_peak_bytes", "gauge", "memory.peak of the service's cgroup.",
                [](const runtime::CgroupUsage& u) { return u.memory_peak; });
  cgroup_family("dockless_service_cgroup_cpu_seconds_total", "counter", "cpu.stat usage_usec of the service's cgroup, in seconds.",
                [](const runtime::CgroupUsage& u) {
                  return u.cpu_usage_usec ? std::optional<double>(static_cast<double>(*u.cpu_usage_usec) / 1e6)
                                          : std::nullopt;
                });
  cgroup_family("dockless_service_cgroup_pids", "gauge", "pids.current of the service's cgroup.",
                [](const runtime::CgroupUsage& u) { return u.pids_current; });
  cgroup_family("dockless_service_memory_pressure_avg10", "gauge", "memory.pressure some avg10 (percent).",
                [](const runtime::CgroupUsage& u) { return u.memory_pressure; });
  cgroup_family("dockless_service_cpu_pressure_avg10", "gauge", "cpu.pressure some avg10 (percent).",
                [](const runtime::CgroupUsage& u) { return u.cpu_pressure; });
  // The configured limits, so a dashboard can divide usage by them; a limit that is unset or
  // "max" has no sample (no bound to divide by).
  std::vector<std::optional<runtime::CgroupLimitValues>> limits;
  limits.reserve(all.size());
  for (const auto& s : all) {
    const config::ServiceSpec* spec = ctx.supervisor->spec(s.name);
    limits.push_back(spec ? std::optional(actors::limit_values(*spec)) : std::nullopt);
  }
  auto limit_family = [&](std::string_view name, std::string_view help, auto get) {
    w.family(name, "gauge", help);
    for (std::size_t i = 0; i < all.size(); ++i)
      if (limits[i])
        if (const std::optional<double> v = get(*limits[i])) w.sample(name, svc(all[i].name), *v);
  };
  auto finite = [](const std::optional<std::uint64_t>& v) {
    return v && *v != runtime::CgroupLimitValues::kMax ? std::optional(static_cast<double>(*v)) : std::nullopt;
  };
  limit_family("dockless_service_memory_max_bytes", "The service's memory_max (memory.max of its cgroup).",
               [&](const runtime::CgroupLimitValues& v) { return finite(v.memory_max); });
  limit_family("dockless_service_memory_high_bytes", "The service's memory_high (memory.high of its cgroup).",
               [&](const runtime::CgroupLimitValues& v) { return finite(v.memory_high); });
  limit_family("dockless_service_cpu_max_cpus", "The service's cpu_max in CPUs (cpu.max quota over period).",
               [](const runtime::CgroupLimitValues& v) {
                 return v.cpu_max && v.cpu_max->quota_us != runtime::CgroupLimitValues::kMax
                            ? std::optional(static_cast<double>(v.cpu_max->quota_us) /
                                            static_cast<double>(v.cpu_max->period_us))
                            : std::nullopt;
               });
  limit_family("dockless_service_pids_max", "The service's pids_max (pids.max of its cgroup).",
               [&](const runtime::CgroupLimitValues& v) { return finite(v.pids_max); });
  w.family("dockless_service_log_bytes_total", "counter", "Bytes of output captured (logical log position).");
  for (const auto& s : all) {
    if (const auto store = ctx.supervisor->logs(s.name)) {
      for (actors::Stream st : {actors::Stream::out, actors::Stream::err})
        w.sample("dockless_service_log_bytes_total",
                 svc(s.name) + ",stream=\"" + std::string(actors::stream_name(st)) + "\"", store->end(st));
    }
  }
  w.family("dockless_service_log_dropped_bytes_total", "counter", "Output thrown away because the disk refused it.");
  for (const auto& s : all) {
    if (const auto store = ctx.supervisor->logs(s.name)) {
      for (actors::Stream st : {actors::Stream::out, actors::Stream::err})
        w.sample("dockless_service_log_dropped_bytes_total",
                 svc(s.name) + ",stream=\"" + std::string(actors::stream_name(st)) + "\"",
                 store->stats(st).bytes_dropped);
    }
  }
  w.family("dockless_service_healthy", "gauge", "1 healthy, 0 otherwise; absent without a health check.");
  for (const auto& s : all)
    if (s.health != actors::Health::none)
      w.sample("dockless_service_healthy", svc(s.name), s.health == actors::Health::healthy ? 1 : 0);

  w.family("dockless_rss_bytes", "gauge", "Resident memory of the daemon.");
  w.sample("dockless_rss_bytes", "", actors::self_rss_bytes().value_or(0));
  if (ctx.server) {
    const ServerStats& st = ctx.server->stats();
    w.family("dockless_http_connections_open", "gauge", "HTTP connections open.");
    w.sample("dockless_http_connections_open", "", st.open_connections);
    w.family("dockless_http_streams_open", "gauge", "Streamed responses (log follows, event streams) open.");
    w.sample("dockless_http_streams_open", "", st.open_streams);
    w.family("dockless_http_requests_total", "counter", "HTTP requests answered.");
    w.sample("dockless_http_requests_total", "", st.requests);
  }
  const actors::EventLogStats& es = ctx.events->stats();
  w.family("dockless_events_log_bytes", "gauge", "Bytes in events.log.");
  w.sample("dockless_events_log_bytes", "", es.file_size);
  w.family("dockless_events_total", "counter", "Events recorded (the last sequence number).");
  w.sample("dockless_events_total", "", ctx.events->last_seq());
  w.family("dockless_ring_cq_overflow_total", "counter", "io_uring completion-queue overflows.");
  w.sample("dockless_ring_cq_overflow_total", "", runtime::reactor().stats().cq_overflow);
  return Response::text(200, w.out.str(), "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace

void register_metrics(Router& router, ApiContext& ctx) {
  router.get("/metrics", [&ctx](Request&) { return now(metrics(ctx)); });
}

}  // namespace http::api
