// Internal helpers shared by the parser's files; not part of the public API.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace config::detail {

SourcePos pos_of(const toml::source_region& region);
SourcePos pos_of(const toml::node& node);
std::string_view type_name(const toml::node& node);
std::string quote(std::string_view s);

// The closest candidate within edit distance 2, or one the key is a prefix of (3+ chars).
std::optional<std::string_view> did_you_mean(std::string_view key,
                                             const std::vector<std::string_view>& candidates);

// Collects errors for one file.
struct Sink {
  std::string file;
  std::vector<Error> errors;
  void add(SourcePos pos, std::string message) {
    errors.push_back({file, pos.line, pos.col, std::move(message)});
  }
  void add(const toml::node& node, std::string message) { add(pos_of(node), std::move(message)); }
};

// Sorts by position, errors of other files (env files) after the config file's own.
void sort_errors(std::vector<Error>& errors, const std::string& main_file);

// Reads typed keys out of one table, reporting problems as "<path>.<key>: ...".
class Reader {
 public:
  Reader(const toml::table& table, std::string path, Sink& sink)
      : table_(table), path_(std::move(path)), sink_(sink) {}

  const toml::table& table() const { return table_; }
  const std::string& path() const { return path_; }
  Sink& sink() { return sink_; }
  std::string key_path(std::string_view key) const { return path_.empty() ? std::string(key) : path_ + "." + std::string(key); }

  const toml::node* find(std::string_view key) const { return table_.get(key); }
  void error(const toml::node& at, std::string_view key, const std::string& message) {
    sink_.add(at, key_path(key) + ": " + message);
  }
  void type_error(const toml::node& at, std::string_view key, std::string_view expected) {
    error(at, key, "expected " + std::string(expected) + ", got " + std::string(type_name(at)));
  }

  // Reports keys outside `allowed`; path_ "" means the top level.
  void reject_unknown(std::initializer_list<std::string_view> allowed);

  std::optional<std::string> string(std::string_view key, bool non_empty = false);
  std::optional<bool> boolean(std::string_view key);
  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max);
  std::optional<Duration> duration(std::string_view key);
  std::optional<std::uint64_t> size(std::string_view key, std::uint64_t min);
  std::optional<std::string> one_of(std::string_view key, std::initializer_list<std::string_view> choices);
  std::optional<std::vector<std::string>> string_list(std::string_view key, bool allow_single);

  // The same checks on a node already in hand (array items, table values).
  std::optional<Duration> duration_of(const toml::node& node, std::string_view key);
  std::optional<std::string> one_of_node(const toml::node& node, std::string_view key,
                                         std::initializer_list<std::string_view> choices);

 private:
  const toml::table& table_;
  std::string path_;
  Sink& sink_;
};

// Checks and interprets every [[triggers]] table (after the services are known, since an
// action names one). config/trigger.cpp.
// Secrets by reference are resolved here, through the chain of config/secrets.hpp.
void interpret_triggers(Config& config, const toml::table& root, const Inputs& in, Sink& sink);

}  // namespace config::detail
