#pragma once
// Bounds on JSON from clients. nlohmann's DOM and every walk the daemon makes over
// it (the spec converter, dump()) recurse once per nesting level, so a small body
// nested deep enough overflows the stack: a body is measured before it is parsed.
#include <cstddef>
#include <string_view>

namespace http {

// Deeper than any document the API takes (a service spec is 3-4 levels).
inline constexpr std::size_t kMaxJsonDepth = 64;

// Does `text` nest arrays/objects at most `max_depth` deep? A linear scan that
// skips strings; it does not validate (the parser does that afterwards).
bool json_depth_within(std::string_view text, std::size_t max_depth = kMaxJsonDepth) noexcept;

}  // namespace http
