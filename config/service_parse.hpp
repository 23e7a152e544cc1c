// Internal: the parser of one [services.NAME] table, split over service*.cpp.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/detail.hpp"
#include "config/substitute.hpp"

namespace config::detail {

class ServiceParser {
 public:
  ServiceParser(std::string_view name, const toml::table& table, const ServiceContext& ctx, Sink& sink)
      : r_(table, "services." + std::string(name), sink), ctx_(ctx) {
    spec_.name = std::string(name);
    spec_.pos = pos_of(table);
  }

  bool run(ServiceSpec* out);

 private:
  Resolution resolve(std::string_view name, bool env_stage);
  std::optional<std::string> subst(const toml::node& at, std::string_view key, std::string_view text,
                                   bool env_stage = false);
  std::optional<std::vector<std::string>> command_of(const toml::node& n, std::string_view key);
  void env_files();
  void env_table();
  void dependencies();
  std::optional<Port> port_of(const toml::node& n, std::string_view key);
  void ports();
  void health();
  void sockets();  // config/sockets.cpp
  void socket_fds_clash();
  void socket_modes();  // restart_mode, start_on: after sockets() and ready()
  std::optional<Socket> socket_of(const toml::table& t, std::size_t index);
  void ready();
  void misc();
  void attach();  // config/attach.cpp
  void limits();  // config/limits.cpp
  std::optional<MemoryLimit> memory_limit(std::string_view key, bool allow_percent);

  Reader r_;
  const ServiceContext& ctx_;
  ServiceSpec spec_;
  std::map<std::string, std::string> file_env_;  // env_file values, for the env table's stage
  std::size_t errors_at_start_ = 0;
};

// Parses one service, adding its problems to sink; false if it had any. *out gets whatever
// could be read even then, so that cross-service checks still see its ports and dependencies.
bool parse_service_into(std::string_view name, const toml::table& table, const ServiceContext& ctx,
                        Sink& sink, ServiceSpec* out);

}  // namespace config::detail
