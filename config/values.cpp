// Scalar value forms: durations, sizes, signal names and shell-like command lines.
#include <csignal>
#include <limits>

#include "config/config.hpp"

namespace config {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

// Reads the leading digits of text at *i; false on overflow or when there are none.
bool read_number(std::string_view text, std::size_t* i, std::uint64_t* out) {
  std::uint64_t value = 0;
  std::size_t start = *i;
  while (*i < text.size() && is_digit(text[*i])) {
    std::uint64_t digit = static_cast<std::uint64_t>(text[*i] - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return false;
    value = value * 10 + digit;
    ++*i;
  }
  *out = value;
  return *i > start;
}

bool mul_overflows(std::uint64_t a, std::uint64_t b) {
  return b != 0 && a > std::numeric_limits<std::uint64_t>::max() / b;
}

}  // namespace

// "100ms", "5s", "2m", "1h", combined as "1h2m3s500ms"; "0" alone is zero.
std::optional<Duration> parse_duration(std::string_view text, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<Duration> {
    if (error) *error = "invalid duration \"" + std::string(text) + "\": " + why;
    return std::nullopt;
  };
  if (text.empty()) return fail("empty");
  if (text == "0") return Duration{0};
  if (text[0] == '-') return fail("must not be negative");
  // Keep totals well inside milliseconds' range (about 292 million years in int64 ms).
  constexpr std::uint64_t kMaxMs = std::uint64_t{1} << 53;
  std::uint64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::uint64_t n = 0;
    if (!read_number(text, &i, &n)) return fail("expected a number with a unit such as 5s or 100ms");
    std::size_t unit_start = i;
    while (i < text.size() && !is_digit(text[i])) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    std::uint64_t scale = 0;
    if (unit == "ms") scale = 1;
    else if (unit == "s") scale = 1000;
    else if (unit == "m") scale = 60'000;
    else if (unit == "h") scale = 3'600'000;
    else if (unit.empty()) return fail("missing unit (use ms, s, m or h)");
    else return fail("unknown unit \"" + std::string(unit) + "\" (use ms, s, m or h)");
    if (mul_overflows(n, scale) || n * scale > kMaxMs - total) return fail("too large");
    total += n * scale;
  }
  return Duration{static_cast<Duration::rep>(total)};
}

// "4096", "512B", "100KB" (1000), "512K"/"512KiB" (1024), "10M"/"10MiB", "10MB", "1G"/"1GiB", "1GB".
std::optional<std::uint64_t> parse_size(std::string_view text, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<std::uint64_t> {
    if (error) *error = "invalid size \"" + std::string(text) + "\": " + why;
    return std::nullopt;
  };
  if (text.empty()) return fail("empty");
  if (text[0] == '-') return fail("must not be negative");
  std::size_t i = 0;
  std::uint64_t n = 0;
  if (!read_number(text, &i, &n)) return fail("expected a number with an optional unit such as 10MiB");
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  struct Unit {
    std::string_view name;
    std::uint64_t scale;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},
      {"B", 1},
      {"K", 1024},
      {"KiB", 1024},
      {"KB", 1000},
      {"M", 1024 * 1024},
      {"MiB", 1024 * 1024},
      {"MB", 1000 * 1000},
      {"G", 1024 * 1024 * 1024},
      {"GiB", 1024 * 1024 * 1024},
      {"GB", 1000 * 1000 * 1000},
  };
  for (const Unit& u : kUnits) {
    if (iequals(unit, u.name)) {
      if (mul_overflows(n, u.scale)) return fail("too large");
      return n * u.scale;
    }
  }
  return fail("unknown unit \"" + std::string(unit) + "\" (use B, K/KiB, KB, M/MiB, MB, G/GiB or GB)");
}

std::optional<int> parse_signal(std::string_view text, std::string* error) {
  struct Sig {
    std::string_view name;
    int number;
  };
  static constexpr Sig kSignals[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
      {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"ALRM", SIGALRM},
      {"PIPE", SIGPIPE}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
      {"WINCH", SIGWINCH}, {"ABRT", SIGABRT},
  };
  std::string_view name = text;
  if (name.size() > 3 && iequals(name.substr(0, 3), "SIG")) name.remove_prefix(3);
  for (const Sig& s : kSignals)
    if (iequals(name, s.name)) return s.number;
  if (error) *error = "unknown signal \"" + std::string(text) + "\" (use a name such as \"TERM\" or a number)";
  return std::nullopt;
}

// Shell-like word splitting without shell features: whitespace separates words; '...' is
// literal; "..." allows \" \\ \$ escapes; a backslash outside quotes escapes the next character.
std::optional<std::vector<std::string>> split_command(std::string_view text, std::string* error) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  std::size_t i = 0;
  auto fail = [&](std::string why) -> std::optional<std::vector<std::string>> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  while (i < text.size()) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      ++i;
    } else if (c == '\'') {
      std::size_t end = text.find('\'', i + 1);
      if (end == std::string_view::npos) return fail("unterminated single quote");
      word.append(text.substr(i + 1, end - i - 1));
      in_word = true;
      i = end + 1;
    } else if (c == '"') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        char d = text[i];
        if (d == '"') {
          closed = true;
          ++i;
          break;
        }
        if (d == '\\' && i + 1 < text.size() &&
            (text[i + 1] == '"' || text[i + 1] == '\\' || text[i + 1] == '$')) {
          word.push_back(text[i + 1]);
          i += 2;
          continue;
        }
        word.push_back(d);
        ++i;
      }
      if (!closed) return fail("unterminated double quote");
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 >= text.size()) return fail("trailing backslash");
      word.push_back(text[i + 1]);
      in_word = true;
      i += 2;
    } else {
      word.push_back(c);
      in_word = true;
      ++i;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

}  // namespace config
