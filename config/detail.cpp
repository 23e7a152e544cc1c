#include "config/detail.hpp"

#include <algorithm>

namespace config::detail {

SourcePos pos_of(const toml::source_region& region) {
  return {static_cast<int>(region.begin.line), static_cast<int>(region.begin.column)};
}

SourcePos pos_of(const toml::node& node) { return pos_of(node.source()); }

std::string_view type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::date: return "date";
    case toml::node_type::time: return "time";
    case toml::node_type::date_time: return "date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

// Built with append: `"\"" + std::string(s)` trips GCC 12's -Wrestrict false positive at -O2+.
std::string quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  out.append(s);
  out.push_back('"');
  return out;
}

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::optional<std::string_view> did_you_mean(std::string_view key,
                                             const std::vector<std::string_view>& candidates) {
  std::optional<std::string_view> best;
  std::size_t best_distance = 3;
  for (std::string_view c : candidates) {
    std::size_t d = edit_distance(key, c);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  if (best) return best;
  if (key.size() >= 3)
    for (std::string_view c : candidates)
      if (c.substr(0, key.size()) == key) return c;
  return std::nullopt;
}

void sort_errors(std::vector<Error>& errors, const std::string& main_file) {
  std::stable_sort(errors.begin(), errors.end(), [&](const Error& a, const Error& b) {
    bool a_other = a.file != main_file;
    bool b_other = b.file != main_file;
    if (a_other != b_other) return b_other;
    if (a.file != b.file) return a.file < b.file;
    if (a.line != b.line) return a.line < b.line;
    return a.col < b.col;
  });
}

void Reader::reject_unknown(std::initializer_list<std::string_view> allowed) {
  for (auto&& [key, node] : table_) {
    std::string_view k = key.str();
    if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
    std::string message = "unknown key " + quote(k);
    message += path_.empty() ? " at top level" : " in [" + path_ + "]";
    if (auto hint = did_you_mean(k, std::vector<std::string_view>(allowed))) message += "; did you mean " + quote(*hint) + "?";
    SourcePos pos = pos_of(key.source());
    if (pos.line == 0) pos = pos_of(node);
    sink_.add(pos, std::move(message));
  }
}

std::optional<std::string> Reader::string(std::string_view key, bool non_empty) {
  const toml::node* n = find(key);
  if (!n) return std::nullopt;
  if (!n->is_string()) {
    type_error(*n, key, "a string");
    return std::nullopt;
  }
  std::string value = n->as_string()->get();
  if (non_empty && value.empty()) {
    error(*n, key, "must not be empty");
    return std::nullopt;
  }
  return value;
}

std::optional<bool> Reader::boolean(std::string_view key) {
  const toml::node* n = find(key);
  if (!n) return std::nullopt;
  if (!n->is_boolean()) {
    type_error(*n, key, "true or false");
    return std::nullopt;
  }
  return n->as_boolean()->get();
}

std::optional<std::int64_t> Reader::integer(std::string_view key, std::int64_t min, std::int64_t max) {
  const toml::node* n = find(key);
  if (!n) return std::nullopt;
  if (!n->is_integer()) {
    type_error(*n, key, "an integer");
    return std::nullopt;
  }
  std::int64_t v = n->as_integer()->get();
  if (v < min || v > max) {
    std::string range = max == INT64_MAX ? "at least " + std::to_string(min)
                                         : "between " + std::to_string(min) + " and " + std::to_string(max);
    error(*n, key, "must be " + range + ", got " + std::to_string(v));
    return std::nullopt;
  }
  return v;
}

std::optional<Duration> Reader::duration_of(const toml::node& n, std::string_view key) {
  if (n.is_integer()) {
    std::string v = std::to_string(n.as_integer()->get());
    error(n, key, "expected a duration string, got integer " + v + "; use a string such as \"" + v + "s\"");
    return std::nullopt;
  }
  if (!n.is_string()) {
    type_error(n, key, "a duration string such as \"5s\"");
    return std::nullopt;
  }
  std::string why;
  auto d = parse_duration(n.as_string()->get(), &why);
  if (!d) error(n, key, why);
  return d;
}

std::optional<Duration> Reader::duration(std::string_view key) {
  const toml::node* n = find(key);
  return n ? duration_of(*n, key) : std::nullopt;
}

std::optional<std::uint64_t> Reader::size(std::string_view key, std::uint64_t min) {
  const toml::node* n = find(key);
  if (!n) return std::nullopt;
  std::optional<std::uint64_t> v;
  if (n->is_integer()) {
    std::int64_t i = n->as_integer()->get();
    if (i < 0) {
      error(*n, key, "must not be negative");
      return std::nullopt;
    }
    v = static_cast<std::uint64_t>(i);
  } else if (n->is_string()) {
    std::string why;
    v = parse_size(n->as_string()->get(), &why);
    if (!v) {
      error(*n, key, why);
      return std::nullopt;
    }
  } else {
    type_error(*n, key, "a size (bytes, or a string such as \"10MiB\")");
    return std::nullopt;
  }
  if (*v < min) {
    error(*n, key, "must be at least " + std::to_string(min) + " bytes, got " + std::to_string(*v));
    return std::nullopt;
  }
  return v;
}

std::optional<std::string> Reader::one_of_node(const toml::node& n, std::string_view key,
                                               std::initializer_list<std::string_view> choices) {
  std::string list;
  for (std::string_view c : choices) list += (list.empty() ? "" : ", ") + quote(c);
  if (!n.is_string()) {
    type_error(n, key, "one of " + list);
    return std::nullopt;
  }
  const std::string& v = n.as_string()->get();
  if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
    error(n, key, "expected one of " + list + ", got " + quote(v));
    return std::nullopt;
  }
  return v;
}

std::optional<std::string> Reader::one_of(std::string_view key, std::initializer_list<std::string_view> choices) {
  const toml::node* n = find(key);
  return n ? one_of_node(*n, key, choices) : std::nullopt;
}

std::optional<std::vector<std::string>> Reader::string_list(std::string_view key, bool allow_single) {
  const toml::node* n = find(key);
  if (!n) return std::nullopt;
  std::string_view expected = allow_single ? "a string or an array of strings" : "an array of strings";
  if (allow_single && n->is_string()) return std::vector<std::string>{n->as_string()->get()};
  if (!n->is_array()) {
    type_error(*n, key, expected);
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (const toml::node& item : *n->as_array()) {
    if (!item.is_string()) {
      error(item, key, "expected " + std::string(expected) + ", got an array item of type " +
                           std::string(type_name(item)));
      ok = false;
      continue;
    }
    out.push_back(item.as_string()->get());
  }
  if (!ok) return std::nullopt;
  return out;
}

}  // namespace config::detail
