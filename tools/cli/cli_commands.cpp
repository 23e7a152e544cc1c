// The client commands: each builds one request (or one per name), prints the answer
// for people (or as JSON with --json) and maps the outcome to an exit code.
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tools/cli/cli_context.hpp"
#include "tools/cli/cli_format.hpp"
#include "tools/cli/cli_plan.hpp"

namespace tools::cli {

namespace {

using nlohmann::json;

json parse_json(const std::string& body) { return json::parse(body, nullptr, false); }

std::string with_newline(std::string s) {
  if (s.empty() || s.back() != '\n') s += '\n';
  return s;
}

void out(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
}

std::string service_path(const std::string& name) { return "/v1/services/" + url_encode(name); }

// A 422's "text" is "SOURCE:LINE:COL: message" where SOURCE is whatever the daemon
// called the request body; the line and column are in the user's file, so name it.
std::string retarget(const std::string& text, const std::string& file) {
  for (std::size_t i = text.find(':'); i != std::string::npos; i = text.find(':', i + 1)) {
    std::size_t j = i + 1, digits1 = 0, digits2 = 0;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j, ++digits1;
    if (digits1 == 0 || j >= text.size() || text[j] != ':') continue;
    std::size_t k = j + 1;
    while (k < text.size() && std::isdigit(static_cast<unsigned char>(text[k]))) ++k, ++digits2;
    if (digits2 == 0 || k >= text.size() || text[k] != ':') continue;
    return file + text.substr(i);
  }
  return text;
}

void print_detail(const json& d, const std::string& what) {
  if (d.is_null() || d.is_discarded()) return;
  auto line = [](const std::string& s) { std::fprintf(stderr, "  %s\n", s.c_str()); };
  if (d.is_string()) {
    line(d.get<std::string>());
  } else if (d.is_array()) {
    for (const auto& e : d) {
      if (e.is_string()) line(e.get<std::string>());
      else if (e.is_object() && e.contains("text") && e["text"].is_string()) line(e["text"].get<std::string>());
      else if (e.is_object() && e.contains("message") && e["message"].is_string())
        line(e.value("field", std::string()) + (e.value("field", std::string()).empty() ? "" : ": ") +
             e["message"].get<std::string>());
      else line(e.dump());
    }
  } else if (d.is_object()) {
    for (const auto& [k, v] : d.items()) {
      if (v.is_string() && v.get<std::string>() == what) continue;  // says nothing new
      line(k + ": " + (v.is_string() ? v.get<std::string>() : v.dump()));
    }
  } else {
    line(d.dump());
  }
}

// Streams a GET to stdout through `sink`; maps every ending to an exit code.
int stream_to_stdout(Context& ctx, const HttpRequest& req, bool follow, const std::string& what,
                     const BodySink& sink) {
  install_interrupt_handler();
  HttpResponse head;
  std::optional<std::chrono::milliseconds> idle;
  if (!follow) idle = std::chrono::duration_cast<std::chrono::milliseconds>(HttpClient::kRequestTimeout);
  std::optional<ClientError> err = ctx.client.stream(req, &head, sink, idle);
  if (interrupted()) return kOk;  // Ctrl-C is how a follow ends
  if (err) {
    if (err->kind == ClientError::Kind::interrupted) return kOk;
    std::fprintf(stderr, "dockless: %s\n", err->message.c_str());
    return kUnreachable;
  }
  if (head.status != 0 && !success(head.status)) return report(head, what);
  return kOk;
}

bool write_stdout(const char* data, std::size_t size) { return write_fully(STDOUT_FILENO, data, size); }

}  // namespace

bool success(int status) { return status >= 200 && status < 300; }

std::optional<HttpResponse> send(const Context& ctx, const HttpRequest& req, int* exit) {
  auto [resp, err] = ctx.client.request(req);
  if (!resp) {
    std::fprintf(stderr, "dockless: %s\n", err.message.c_str());
    *exit = kUnreachable;
  }
  return std::move(resp);
}

int report(const HttpResponse& resp, const std::string& what) {
  json j = parse_json(resp.body);
  std::string error;
  if (j.is_object() && j.contains("error") && j["error"].is_string()) error = j["error"];
  if (error.empty()) {
    error = "HTTP " + std::to_string(resp.status);
    std::string body = resp.body.substr(0, 200);
    while (!body.empty() && std::isspace(static_cast<unsigned char>(body.back()))) body.pop_back();
    if (!body.empty()) error += ": " + body;
  }
  std::fprintf(stderr, "dockless: %s%s%s\n", what.c_str(), what.empty() ? "" : ": ", error.c_str());
  if (j.is_object() && j.contains("detail")) print_detail(j["detail"], what);
  if (resp.status == 401)
    std::fputs("dockless: over TCP the API needs a key: pass --token KEY or set DOCKLESS_TOKEN (a daemon "
               "without configured keys made one in DATA_DIR/api-key; the unix socket needs none)\n",
               stderr);
  return resp.status == 404 ? kNotFound : kRefused;
}

int cmd_ps(Context& ctx, const Flags& f) {
  int exit = kOk;
  auto resp = send(ctx, {"GET", "/v1/services", {}, ""}, &exit);
  if (!resp) return exit;
  if (!success(resp->status)) return report(*resp, "");
  if (f.has("json")) {
    out(with_newline(resp->body));
    return kOk;
  }
  json list = parse_json(resp->body);
  if (!list.is_array()) {
    std::fprintf(stderr, "dockless: unexpected answer to GET /v1/services (not a JSON array)\n");
    return kRefused;
  }
  out(render_ps(list, colour_enabled(STDOUT_FILENO)));
  return kOk;
}

int cmd_inspect(Context& ctx, const Flags& f) {
  const std::string& name = f.positional[0];
  if (is_event_id(name)) return cmd_inspect_event(ctx, f);
  int exit = kOk;
  const std::string path = service_path(name) + (f.has("secrets") ? "?secrets=1" : "");
  auto resp = send(ctx, {"GET", path, {}, ""}, &exit);
  if (!resp) return exit;
  if (!success(resp->status)) return report(*resp, name);
  json j = parse_json(resp->body);
  if (j.is_discarded()) {
    out(with_newline(resp->body));
    return kOk;
  }
  out(j.dump(f.has("json") ? -1 : 2) + "\n");
  return kOk;
}

namespace {

// " (with db, cache)": the dependencies a start brought up or the dependents a stop took down.
std::string along_with(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (!j.is_object()) return "";
  for (const char* key : {"dependencies_started", "dependents_stopped"}) {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_array() || it->empty()) continue;
    std::string list;
    for (const auto& n : *it)
      if (n.is_string()) list += (list.empty() ? "" : ", ") + n.get<std::string>();
    return " (with " + list + ")";
  }
  return "";
}

}  // namespace

int cmd_action(Context& ctx, const Flags& f) {
  int first_failure = kOk;
  std::vector<std::string> failed;
  for (const auto& name : f.positional) {
    int exit = kOk;
    const std::string query = f.has("no-deps") ? "?deps=false" : "";
    auto resp = send(ctx, {"POST", service_path(name) + "/" + ctx.command + query, {}, ""}, &exit);
    if (!resp) return exit;  // the daemon is unreachable: the other names would fail the same way
    if (!success(resp->status)) {
      int code = report(*resp, name);
      if (first_failure == kOk) first_failure = code;
      failed.push_back(name);
      continue;
    }
    // The 202's state is the one before the command took effect (the service actor
    // acts on it asynchronously), so saying "running" after a stop would mislead.
    std::printf("%s: %s requested%s\n", name.c_str(), ctx.command.c_str(), along_with(resp->body).c_str());
  }
  if (!failed.empty() && f.positional.size() > 1) {
    std::string list;
    for (const auto& n : failed) list += (list.empty() ? "" : ", ") + n;
    std::fprintf(stderr, "dockless %s: failed for %s\n", ctx.command.c_str(), list.c_str());
  }
  return first_failure;
}

int cmd_logs(Context& ctx, const Flags& f) {
  const std::string& name = f.positional[0];
  std::string query;
  auto add = [&](const std::string& k, const std::string& v) {
    query += (query.empty() ? "?" : "&") + k + "=" + url_encode(v);
  };
  if (f.has("tail")) {
    std::string n = f.get("tail");
    bool digits = !n.empty() && n.find_first_not_of("0123456789") == std::string::npos;
    if (!digits && n != "all") return usage_error("logs", "-n wants a number or \"all\", got \"" + n + "\"");
    add("tail", n);
  }
  if (f.has("since")) add("since", f.get("since"));
  if (f.has("stream")) {
    std::string s = f.get("stream");
    if (s != "stdout" && s != "stderr") return usage_error("logs", "--stream is stdout or stderr, got \"" + s + "\"");
    add("stream", s);
  }
  bool follow = f.has("follow");
  if (follow) add("follow", "1");
  HttpRequest req{"GET", service_path(name) + "/logs" + query, {}, ""};
  return stream_to_stdout(ctx, req, follow, name, write_stdout);
}

int cmd_events(Context& ctx, const Flags& f) {
  std::string query;
  auto add = [&](const std::string& k, const std::string& v) {
    query += (query.empty() ? "?" : "&") + k + "=" + url_encode(v);
  };
  if (f.has("since")) {
    std::string s = f.get("since");
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
      return usage_error("events", "--since wants a sequence number, got \"" + s + "\"");
    add("since", s);
  }
  if (f.has("service")) add("service", f.get("service"));
  if (f.has("kind")) add("kind", f.get("kind"));
  bool follow = f.has("follow");
  if (follow) add("follow", "1");
  if (f.has("output")) {
    if (!follow) return usage_error("events", "--output needs -f (the history of output is `dockless logs NAME`)");
    add("output", "1");
  }
  HttpRequest req{"GET", "/v1/events" + query, {{"Accept", "application/x-ndjson"}}, ""};
  if (f.has("json")) return stream_to_stdout(ctx, req, follow, "events", write_stdout);
  // Human form: whole lines only, so a line split across chunks prints once.
  std::string pending;
  auto sink = [&](const char* data, std::size_t size) {
    pending.append(data, size);
    std::size_t start = 0, nl;
    std::string text;
    while ((nl = pending.find('\n', start)) != std::string::npos) {
      std::string line = pending.substr(start, nl - start);
      start = nl + 1;
      if (line.empty()) continue;
      json ev = parse_json(line);
      text += (ev.is_discarded() ? line : render_event(ev)) + "\n";
    }
    pending.erase(0, start);
    return text.empty() || write_stdout(text.data(), text.size());
  };
  int rc = stream_to_stdout(ctx, req, follow, "events", sink);
  if (!pending.empty()) {
    json ev = parse_json(pending);
    std::string text = (ev.is_discarded() ? pending : render_event(ev)) + "\n";
    write_stdout(text.data(), text.size());
  }
  return rc;
}

int cmd_add(Context& ctx, const Flags& f) {
  const std::string& file = f.positional[0];
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "dockless add: cannot read %s: %s\n", file.c_str(), std::strerror(errno));
    return kUsage;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  int exit = kOk;
  auto resp = send(ctx, {"POST", "/v1/services", {{"Content-Type", "application/toml"}}, ss.str()}, &exit);
  if (!resp) return exit;
  if (resp->status == 422) {
    json j = parse_json(resp->body);
    std::size_t count = 0;
    if (j.is_object() && j.contains("detail") && j["detail"].is_array()) {
      for (const auto& e : j["detail"]) {
        ++count;
        if (e.is_object() && e.contains("text") && e["text"].is_string()) {
          std::fprintf(stderr, "%s\n", retarget(e["text"].get<std::string>(), file).c_str());
        } else if (e.is_object()) {
          std::string field = e.value("field", std::string());
          std::fprintf(stderr, "%s: %s%s%s\n", file.c_str(), field.c_str(), field.empty() ? "" : ": ",
                       e.value("message", e.dump()).c_str());
        } else {
          std::fprintf(stderr, "%s: %s\n", file.c_str(), e.is_string() ? e.get<std::string>().c_str() : e.dump().c_str());
        }
      }
    }
    std::string error = j.is_object() ? j.value("error", std::string("invalid service spec")) : "invalid service spec";
    std::fprintf(stderr, "dockless add: %s: %s (%zu error(s))\n", file.c_str(), error.c_str(), count);
    return kRefused;
  }
  if (resp->status == 400) {
    // A TOML syntax error: the detail carries the position in the body, which is the file.
    json j = parse_json(resp->body);
    if (j.is_object() && j.contains("detail") && j["detail"].is_object()) {
      const json& d = j["detail"];
      if (d.contains("line") && d["line"].is_number_integer()) {
        std::fprintf(stderr, "%s:%lld:%lld: %s\n", file.c_str(), d["line"].get<long long>(),
                     d.value("column", 0LL), d.value("message", j.value("error", std::string())).c_str());
        std::fprintf(stderr, "dockless add: %s: %s\n", file.c_str(), j.value("error", std::string("bad TOML")).c_str());
        return kRefused;
      }
    }
  }
  if (!success(resp->status)) return report(*resp, file);
  json j = parse_json(resp->body);
  std::string name = j.is_object() && j.contains("name") && j["name"].is_string() ? j["name"].get<std::string>() : "?";
  std::printf("added %s\n", name.c_str());
  return kOk;
}

int cmd_rm(Context& ctx, const Flags& f) {
  int first_failure = kOk;
  for (const auto& name : f.positional) {
    int exit = kOk;
    auto resp = send(ctx, {"DELETE", service_path(name), {}, ""}, &exit);
    if (!resp) return exit;
    if (!success(resp->status)) {
      int code = report(*resp, name);
      if (first_failure == kOk) first_failure = code;
      continue;
    }
    std::printf("removed %s\n", name.c_str());
  }
  return first_failure;
}

int cmd_reload(Context& ctx, const Flags& f) {
  int exit = kOk;
  const bool dry_run = f.has("dry-run");
  auto resp = send(ctx, {"POST", dry_run ? "/v1/reload?dry_run=1" : "/v1/reload", {}, ""}, &exit);
  if (!resp) return exit;
  json j = parse_json(resp->body);
  bool ok = success(resp->status) && j.is_object() && j.value("ok", false);
  if (f.has("json") && !j.is_discarded()) {
    out(j.dump() + "\n");
    return ok ? kOk : resp->status == 404 ? kNotFound : kRefused;
  }
  if (!ok) {
    if (j.is_object() && j.contains("detail") && j["detail"].is_array()) {
      for (const auto& e : j["detail"])
        std::fprintf(stderr, "%s\n", e.is_string() ? e.get<std::string>().c_str() : e.dump().c_str());
      std::fprintf(stderr, "dockless reload: %s; the running config stays\n",
                   j.value("error", std::string("config invalid")).c_str());
      return kRefused;
    }
    return report(*resp, "reload");
  }
  const json plan = j.value("plan", json::object());
  if (dry_run) {
    out("dry run, nothing changed; a reload would do:\n" + render_plan(plan));
    return kOk;
  }
  auto names = [&](const char* key) {
    std::string s;
    if (j.contains(key) && j[key].is_array())
      for (const auto& n : j[key]) s += (s.empty() ? "" : ", ") + (n.is_string() ? n.get<std::string>() : n.dump());
    return s;
  };
  std::string summary;
  for (const char* key : {"added", "removed", "changed", "updated_in_place"}) {
    std::string n = names(key);
    if (!n.empty()) summary += std::string(summary.empty() ? "" : "; ") + key + ": " + n;
  }
  std::printf("reloaded: %s\n", summary.empty() ? "no changes" : summary.c_str());
  // The plan it applied, key by key (the summary line above names only the services).
  if (!plan.value("empty", true)) out(render_plan(plan));
  return kOk;
}

int cmd_signal(Context& ctx, const Flags& f) {
  const std::string& name = f.positional[0];
  const std::string& sig = f.positional[1];
  json body;
  bool number = !sig.empty() && sig.find_first_not_of("0123456789") == std::string::npos;
  if (number) body["signal"] = std::stoi(sig.substr(0, 4));
  else body["signal"] = sig;
  int exit = kOk;
  auto resp = send(ctx, {"POST", service_path(name) + "/signal", {{"Content-Type", "application/json"}}, body.dump()},
                   &exit);
  if (!resp) return exit;
  if (!success(resp->status)) return report(*resp, name);
  std::printf("%s: sent %s\n", name.c_str(), sig.c_str());
  return kOk;
}

// A service declared with attach = { ... } watches PID now (pid_file then only names the
// process after this one exits).
int cmd_attach(Context& ctx, const Flags& f) {
  const std::string& name = f.positional[0];
  const std::string& pid = f.positional[1];
  if (pid.empty() || pid.size() > 10 || pid.find_first_not_of("0123456789") != std::string::npos) {
    std::fprintf(stderr, "dockless: attach: PID must be a process id, got \"%s\"\n", pid.c_str());
    return kUsage;
  }
  json body;
  body["pid"] = std::stoll(pid);
  int exit = kOk;
  auto resp = send(ctx, {"POST", service_path(name) + "/attach", {{"Content-Type", "application/json"}}, body.dump()},
                   &exit);
  if (!resp) return exit;
  if (!success(resp->status)) return report(*resp, name);
  std::printf("%s: attaching pid %s\n", name.c_str(), pid.c_str());
  return kOk;
}

// POST /v1/upgrade answers before the exec; then GET /v1/upgrade tells the outcome:
// a higher `image` is the new image, a higher `failures` count a failed exec.
int cmd_upgrade(Context& ctx, const Flags&) {
  int exit = kOk;
  auto resp = send(ctx, {"POST", "/v1/upgrade", {}, ""}, &exit);
  if (!resp) return exit;
  if (!success(resp->status)) return report(*resp, "upgrade");
  json before = parse_json(resp->body);
  const int image = before.is_object() ? before.value("image", 1) : 1;
  const int failures = before.is_object() ? before.value("failures", 0) : 0;
  for (int i = 0; i < 600; ++i) {
    ::usleep(100'000);
    // The daemon is between images for a moment: a refused or dropped request is retried.
    auto [now, err] = ctx.client.request({"GET", "/v1/upgrade", {}, ""});
    if (!now || !success(now->status)) continue;
    json j = parse_json(now->body);
    if (!j.is_object()) continue;
    if (j.value("image", 0) > image) {
      std::printf("upgraded: dockless %s (pid %d, image %d)\n", j.value("version", std::string("?")).c_str(),
                  j.value("pid", 0), j.value("image", 0));
      return kOk;
    }
    if (j.value("failures", 0) > failures) {
      std::fprintf(stderr, "dockless upgrade: %s; the running daemon stays\n",
                   j.value("last_error", std::string("failed")).c_str());
      return kRefused;
    }
  }
  std::fprintf(stderr, "dockless upgrade: no outcome within 60 s\n");
  return kUnreachable;
}

}  // namespace tools::cli
