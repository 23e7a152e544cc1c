#pragma once
// `dockless top`'s text, kept apart from the terminal loop (cli_top.cpp) so that it is
// unit-tested on its own (tests/cli/top_format_test.cpp).
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tools::cli {

// A text sparkline of `width` characters (▁▂▃▄▅▆▇█) for a series with gaps (nullopt):
// the series is cut into `width` equal buckets, each drawn as its highest value scaled to
// the series' maximum (or `max` when given); a bucket with no value is a space. A series
// shorter than `width` fills the right end, as the last hour ends now.
std::string text_sparkline(const std::vector<std::optional<double>>& values, std::size_t width,
                           std::optional<double> max = std::nullopt);

// The screen for one GET /v1/history answer: the node's line, then one row a service
// (NAME STATE CPU MEM RESTARTS and the CPU sparkline). `width` is the terminal's columns.
std::string render_top(const nlohmann::json& history, bool colour, std::size_t width);

}  // namespace tools::cli
