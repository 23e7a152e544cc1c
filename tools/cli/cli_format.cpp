#include "tools/cli/cli_format.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace tools::cli {

namespace {

std::string str_or(const nlohmann::json& j, const char* key, const std::string& fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

// A detail value in an event line: bare when it reads unambiguously, JSON otherwise.
std::string detail_text(const nlohmann::json& v) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    bool bare = !s.empty() && s.find_first_of(" \t\n\"=") == std::string::npos;
    return bare ? s : v.dump();
  }
  return v.dump();
}

}  // namespace

std::string format_duration(double seconds) {
  if (!(seconds > 0)) return "0s";  // also NaN
  auto t = static_cast<std::int64_t>(std::floor(seconds));
  char buf[48];
  if (t < 60) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(t));
  } else if (t < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%llds", static_cast<long long>(t / 60),
                  static_cast<long long>(t % 60));
  } else if (t < 86400) {
    std::snprintf(buf, sizeof buf, "%lldh%lldm", static_cast<long long>(t / 3600),
                  static_cast<long long>(t % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldd%lldh", static_cast<long long>(t / 86400),
                  static_cast<long long>(t % 86400 / 3600));
  }
  return buf;
}

std::string format_cpu(double seconds) {
  if (!(seconds > 0)) return "0.0s";
  if (seconds >= 60) return format_duration(seconds);
  char buf[16];
  // Truncated to a tenth, so 59.99 s stays "59.9s" instead of printing "60.0s".
  std::snprintf(buf, sizeof buf, "%.1fs", std::floor(seconds * 10) / 10);
  return buf;
}

std::string format_bytes(std::int64_t bytes) {
  if (bytes < 0) bytes = 0;
  char buf[32];
  if (bytes < 1024) {
    std::snprintf(buf, sizeof buf, "%lldB", static_cast<long long>(bytes));
    return buf;
  }
  static const char units[] = {'K', 'M', 'G', 'T', 'P', 'E'};
  double v = static_cast<double>(bytes) / 1024;
  std::size_t u = 0;
  // Step up before printing would round to "1024.0": 1048575 bytes is "1.0M".
  while (v >= 1023.95 && u + 1 < sizeof units) {
    v /= 1024;
    ++u;
  }
  std::snprintf(buf, sizeof buf, "%.1f%c", v, units[u]);
  return buf;
}

std::string paint(const std::string& text, Colour c) {
  const char* code = nullptr;
  switch (c) {
    case Colour::none: return text;
    case Colour::green: code = "32"; break;
    case Colour::yellow: code = "33"; break;
    case Colour::red: code = "31"; break;
    case Colour::grey: code = "90"; break;
  }
  return std::string("\033[") + code + "m" + text + "\033[0m";
}

bool colour_enabled(int fd) {
  const char* no = std::getenv("NO_COLOR");
  if (no && *no) return false;
  return ::isatty(fd) == 1;
}

std::string render_table(const std::vector<std::vector<Cell>>& rows, bool colour) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    if (row.size() > width.size()) width.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].text.size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += colour ? paint(row[i].text, row[i].colour) : row[i].text;
      if (i + 1 < row.size()) line.append(width[i] - row[i].text.size() + 3, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

Cell state_cell(const nlohmann::json& s) {
  std::string state = str_or(s, "state", "?");
  Cell c{state, Colour::none};
  // start_on = "connection": down, but its sockets are bound and the next connection starts it.
  if (auto w = s.find("waiting_for_connection"); w != s.end() && w->is_boolean() && w->get<bool>()) {
    c.text = "listening";
    c.colour = Colour::yellow;
  } else if (state == "running") {
    c.colour = Colour::green;
  } else if (state == "starting" || state == "stopping" || state == "backoff") {
    c.colour = Colour::yellow;
  } else if (state == "failed") {
    c.colour = Colour::red;
  } else if (state == "stopped") {
    c.colour = Colour::grey;
  } else if (state == "exited") {
    std::string sig = str_or(s, "exit_signal", "");
    auto code = s.find("exit_code");
    bool nonzero = code != s.end() && code->is_number_integer() && code->get<long long>() != 0;
    if (!sig.empty()) c.text = "exited(" + sig + ")";
    else if (code != s.end() && code->is_number_integer()) c.text = "exited(" + code->dump() + ")";
    c.colour = nonzero || !sig.empty() ? Colour::red : Colour::grey;
  }
  // attach = { ... }: someone else's process, watched.
  if (auto a = s.find("attached"); a != s.end() && a->is_boolean() && a->get<bool>()) c.text += " (attached)";
  return c;
}

std::string render_ps(const nlohmann::json& services, bool colour) {
  std::vector<std::vector<Cell>> rows;
  rows.push_back({{"NAME"}, {"STATE"}, {"PID"}, {"UPTIME"}, {"RESTARTS"}, {"HEALTH"}, {"CPU"},
                  {"MEM"}, {"PORTS"}});
  if (!services.is_array()) return render_table(rows, colour);
  for (const auto& s : services) {
    auto num = [&](const char* key) -> const nlohmann::json* {
      auto it = s.find(key);
      return it != s.end() && it->is_number() ? &*it : nullptr;
    };
    std::string pid = num("pid") ? num("pid")->dump() : "-";
    std::string uptime = num("uptime_seconds") ? format_duration(num("uptime_seconds")->get<double>()) : "-";
    std::string restarts = num("restarts") ? num("restarts")->dump() : "0";
    std::string health = str_or(s, "health", "none");
    if (health == "none") health = "-";
    std::string cpu = num("cpu_seconds") ? format_cpu(num("cpu_seconds")->get<double>()) : "-";
    std::string mem = num("rss_bytes") ? format_bytes(num("rss_bytes")->get<std::int64_t>()) : "-";
    std::string ports;
    if (auto p = s.find("ports"); p != s.end() && p->is_array())
      for (const auto& port : *p) ports += (ports.empty() ? "" : ",") + port.dump();
    if (ports.empty()) ports = "-";
    Colour hc = health == "healthy" ? Colour::green : health == "unhealthy" ? Colour::red : Colour::none;
    rows.push_back({{str_or(s, "name", "?")}, state_cell(s), {pid}, {uptime}, {restarts},
                    {health, hc}, {cpu}, {mem}, {ports}});
  }
  return render_table(rows, colour);
}

std::string render_event(const nlohmann::json& ev) {
  if (!ev.is_object()) return ev.dump();
  // A service's output line: as it was written, after who wrote it.
  const std::string kind = str_or(ev, "kind", "");
  if ((kind == "stdout" || kind == "stderr") && ev.contains("line") && ev["line"].is_string())
    return str_or(ev, "time", "-") + "  " + str_or(ev, "service", "?") + "  " + kind + " | " +
           ev["line"].get<std::string>();
  std::string line = str_or(ev, "time", "-") + "  " + str_or(ev, "service", "dockless") + "  " +
                     str_or(ev, "kind", "?");
  for (const auto& [k, v] : ev.items()) {
    if (k == "seq" || k == "time" || k == "service" || k == "kind") continue;
    line += "  " + k + "=" + detail_text(v);
  }
  return line;
}

}  // namespace tools::cli
