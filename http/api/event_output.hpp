#pragma once
// Service output as events on GET /v1/events?follow=1&output=1: each captured line of the
// followed services' stdout/stderr, from the moment the follow began, framed like an event
// ({"kind":"stdout","service":"web","time":"…","line":"…"}) as NDJSON or as SSE data
// (a plain message like the others, without an id: only lifecycle events carry the seq a
// client resumes from).
#include <map>
#include <memory>
#include <string>
#include <stop_token>

#include "actors/log_store.hpp"
#include "http/api/api.hpp"
#include "runtime/notify.hpp"
#include "runtime/scope.hpp"
#include "runtime/task.hpp"

namespace http::api {

class OutputLines {
 public:
  // The services named `service` ("" = all, those added later too), the streams asked for.
  OutputLines(ApiContext& ctx, std::string service, bool want_out, bool want_err, bool sse);
  OutputLines(const OutputLines&) = delete;
  OutputLines& operator=(const OutputLines&) = delete;

  // Starts a reader per followed stream (and a watcher adding services that appear) in
  // `tasks`; they run until `stop`. Their frames gather until take().
  void start(runtime::Scope& tasks, std::stop_token stop);
  // The framed lines gathered so far; the readers may read ahead again.
  std::string take();
  // Fired when there is something to take.
  runtime::Notify& ready() noexcept { return ready_; }

 private:
  runtime::Task<void> read_stream(std::shared_ptr<actors::LogStore> store, std::string service, actors::Stream s,
                                  std::uint64_t pos, std::stop_token stop);
  runtime::Task<void> watch_services(runtime::Scope& tasks, std::stop_token stop);
  void follow_new_services(runtime::Scope& tasks, std::stop_token stop);
  void frame(const std::string& service, actors::Stream s, std::string_view line, bool partial);

  ApiContext& ctx_;
  std::string service_;
  bool want_[2];
  bool sse_;
  std::string buf_;
  runtime::Notify ready_;
  runtime::Notify drained_;
  // Which store each service's readers follow: a service removed and added again under the
  // same name has a new one.
  std::map<std::string, std::weak_ptr<actors::LogStore>> followed_;
};

}  // namespace http::api
