// HTTP/1.1 requests as the connection sees them: llhttp in steps over arbitrarily
// split input, pipelined messages, then the target's path and query decoding.
#include <cstdint>
#include <string_view>

#include "http/parser.hpp"
#include "http/url.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // The first byte picks the read size, so request boundaries fall anywhere.
  const std::size_t chunk = 1 + data[0] % 64;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  http::RequestParser parser(4096);
  std::size_t steps = 0;
  while (!in.empty() && steps++ < 100000) {
    const std::size_t n = in.size() < chunk ? in.size() : chunk;
    const auto step = parser.feed(in.data(), n);
    if (step.consumed > n) __builtin_trap();
    in.remove_prefix(step.consumed);
    using E = http::RequestParser::Event;
    if (step.event == E::error) {
      if (parser.error_status() != 400 && parser.error_status() != 413 && parser.error_status() != 431 &&
          parser.error_status() != 501 && parser.error_status() != 505)
        __builtin_trap();
      break;
    }
    if (step.event == E::message_complete) {
      const http::Request& req = parser.request();
      (void)http::split_path(req.path);
      const auto q = req.target.find('?');
      if (q != std::string::npos) (void)http::parse_query(std::string_view(req.target).substr(q + 1));
      for (const auto& segment : http::split_path(req.path)) (void)http::percent_decode(segment);
      parser.next();
    } else if (step.event == E::need_more && step.consumed < n) {
      __builtin_trap();  // "consumed everything" must mean it
    }
  }
  return 0;
}
