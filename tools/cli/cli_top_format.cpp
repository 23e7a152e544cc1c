#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tools/cli/cli_format.hpp"
#include "tools/cli/cli_top.hpp"

namespace tools::cli {

namespace {

constexpr const char* kBars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};

std::vector<std::optional<double>> series(const nlohmann::json& j, const char* key) {
  std::vector<std::optional<double>> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& v : *it) out.push_back(v.is_number() ? std::optional<double>(v.get<double>()) : std::nullopt);
  return out;
}

std::optional<double> last_of(const std::vector<std::optional<double>>& v) {
  for (auto it = v.rbegin(); it != v.rend(); ++it)
    if (*it) return *it;
  return std::nullopt;
}

std::string percent(double v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, v < 10 ? "%.1f%%" : "%.0f%%", v);
  return buf;
}

std::string node_line(const nlohmann::json& n) {
  if (!n.is_object()) return "";
  std::string line;
  if (auto l = n.find("load"); l != n.end() && l->is_array() && l->size() == 3) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "load %.2f %.2f %.2f", (*l)[0].get<double>(), (*l)[1].get<double>(),
                  (*l)[2].get<double>());
    line += buf;
    if (n.value("cpus", 0) > 0) line += " (" + std::to_string(n.value("cpus", 0)) + " CPUs)";
  }
  auto used = [&](const char* key, const char* label) {
    auto p = n.find(key);
    if (p == n.end() || !p->is_object()) return;
    const auto& t = (*p)["total_bytes"];
    const auto& a = (*p)["available_bytes"];
    if (!t.is_number() || !a.is_number()) return;
    const auto total = t.get<std::int64_t>(), avail = a.get<std::int64_t>();
    line += std::string(line.empty() ? "" : "   ") + label + " " + format_bytes(total - avail) + "/" + format_bytes(total);
  };
  used("memory", "mem");
  used("disk", "disk");
  return line;
}

}  // namespace

std::string text_sparkline(const std::vector<std::optional<double>>& values, std::size_t width,
                           std::optional<double> max) {
  if (width == 0) return "";
  double top = max.value_or(0);
  if (!max)
    for (const auto& v : values)
      if (v) top = std::max(top, *v);
  std::string out;
  const std::size_t n = values.size();
  // Fewer values than characters: one character a value, right-aligned.
  const std::size_t cells = std::min(width, n);
  out.append(width - cells, ' ');
  for (std::size_t c = 0; c < cells; ++c) {
    const std::size_t from = c * n / cells, to = std::max(from + 1, (c + 1) * n / cells);
    std::optional<double> high;
    for (std::size_t i = from; i < to; ++i)
      if (values[i]) high = std::max(high.value_or(*values[i]), *values[i]);
    if (!high) {
      out += ' ';
      continue;
    }
    const double f = top > 0 ? std::clamp(*high / top, 0.0, 1.0) : 0.0;
    out += kBars[static_cast<std::size_t>(std::lround(f * 7))];
  }
  return out;
}

std::string render_top(const nlohmann::json& history, bool colour, std::size_t width) {
  std::string screen = node_line(history.is_object() ? history.value("node", nlohmann::json()) : nlohmann::json());
  if (!screen.empty()) screen += "\n\n";
  std::vector<std::vector<Cell>> rows;
  rows.push_back({{"NAME"}, {"STATE"}, {"CPU"}, {"MEM"}, {"RESTARTS"}, {"CPU, LAST HOUR"}});
  const nlohmann::json empty = nlohmann::json::array();
  const nlohmann::json& services =
      history.is_object() && history.contains("services") && history["services"].is_array() ? history["services"] : empty;
  // What the other columns leave of the terminal goes to the sparkline (NAME up to 20).
  const std::size_t spark = width > 70 ? std::min<std::size_t>(60, width - 66) : 4;
  for (const auto& s : services) {
    const auto cpu = series(s, "cpu_percent");
    const auto mem = series(s, "memory_bytes");
    const auto running = s.value("state", "") == "running" || s.value("state", "") == "starting";
    const std::optional<double> cpu_now = running ? last_of(cpu) : std::nullopt;
    const std::optional<double> mem_now = running ? last_of(mem) : std::nullopt;
    rows.push_back({{s.value("name", "?")},
                    state_cell(s),
                    {cpu_now ? percent(*cpu_now) : "-"},
                    {mem_now ? format_bytes(static_cast<std::int64_t>(*mem_now)) : "-"},
                    {std::to_string(s.value("restarts", 0))},
                    {text_sparkline(cpu, spark)}});
  }
  return screen + render_table(rows, colour);
}

}  // namespace tools::cli
