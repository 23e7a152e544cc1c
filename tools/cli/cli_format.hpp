#pragma once
// Pure text formatting for the CLI (tables, durations, sizes, colours, events), kept
// apart from the I/O so that it is unit-tested on its own.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tools::cli {

// "42s", "3m12s", "2h5m", "4d1h": the two largest units, truncated (never rounded
// up: 59.9 s is "59s", not "60s"). Negative or NaN → "0s".
std::string format_duration(double seconds);
// CPU time: "0.0s".."59.9s" with one decimal, then as format_duration.
std::string format_cpu(double seconds);
// Binary units with one decimal: "512B", "1.0K", "12.3M", "1.1G", "2.0T".
std::string format_bytes(std::int64_t bytes);

enum class Colour { none, green, yellow, red, grey };
// The ANSI-coloured text, or the text itself for Colour::none.
std::string paint(const std::string& text, Colour c);
// Colour on this fd: a TTY, and NO_COLOR unset or empty (https://no-color.org).
bool colour_enabled(int fd);

struct Cell {
  std::string text;
  Colour colour = Colour::none;
};
// Columns padded to their widest cell (measured without escape codes), three
// spaces apart, no trailing spaces. The first row is the header.
std::string render_table(const std::vector<std::vector<Cell>>& rows, bool colour);

// One ps row's STATE text ("running", "exited(1)", "exited(SIGKILL)") and colour.
Cell state_cell(const nlohmann::json& service);
// The `dockless ps` table for GET /v1/services' array.
std::string render_ps(const nlohmann::json& services, bool colour);
// One event as a line: "TIME  SERVICE  KIND  key=value …" (no newline).
std::string render_event(const nlohmann::json& event);

}  // namespace tools::cli
