#include "satoru/web/snapshot_pages.hpp"

#include "satoru/host_restore.hpp"
#include "satoru/snapshot_browse.hpp"
#include "satoru/state_json.hpp"
#include "satoru/store.hpp"
#include "satoru/time.hpp"
#include "satoru/web/detail_pages.hpp"
#include "satoru/web/http_text.hpp"
#include "satoru/web/page.hpp"
#include "satoru/web/responses.hpp"
#include "satoru/web/site_jobs.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>

namespace satoru::web {

namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

constexpr std::string_view api_sites = "/api/v1/sites/", page_sites = "/sites/";
constexpr std::string_view targets_part = "/targets/";

bool is_full_id(const std::string& id) {
  return id.size() == 64 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

/// Whether a well-formed UTF-8 sequence (no overlongs, no surrogates).
bool is_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    int n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (int k = 1; k <= n; ++k) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n + 1;
  }
  return true;
}

std::string last_part(const std::string& path) {
  return path.substr(path.rfind('/') + 1);
}

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string{} : path.substr(0, slash);
}

std::string anchor(const std::string& href, const std::string& text) {
  return "<a href=\"" + html_escape(href) + "\">" + html_escape(text) + "</a>";
}

std::string format_size(const snapshot_node& n) {
  return n.type == "file" ? std::to_string(n.size) : "-";
}

} // namespace

expected<std::string> snapshot_path_parameter(std::string_view text) {
  auto bad = [&](const char* why) {
    return error{errc::invalid_argument,
                 std::string("?path: ") + why +
                     " (give a path relative to the target's root, like etc/app.conf)"};
  };
  if (!text.empty() && text.front() == '/') return bad("must not be absolute");
  std::string out(text);
  if (!out.empty() && out.back() == '/') out.pop_back();
  if (out.size() > 4096) return bad("is too long");
  for (char c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return bad("must not hold NUL or control characters");
    if (c == '\\') return bad("must not hold a backslash");
  }
  if (out.empty()) return out;
  std::size_t start = 0;
  for (;;) {
    auto slash = out.find('/', start);
    auto part = std::string_view(out).substr(
        start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == "..")
      return bad("must not hold \".\", \"..\" or an empty part");
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

std::string attachment_header(std::string_view name) {
  std::string plain;
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    bool safe = (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') ||
                (u >= '0' && u <= '9') || c == '.' || c == '-' || c == '_' || c == ' ';
    plain += safe ? c : '_';
  }
  if (plain.find_first_not_of('.') == std::string::npos)
    return "attachment; filename=\"download\"";
  std::string header = "attachment; filename=\"" + plain + "\"";
  if (is_utf8(name) && plain != name) header += "; filename*=UTF-8''" + url_encode(name);
  return header;
}

namespace {

/// A file's bytes from a running `restic dump`.
class dump_body : public body_source {
public:
  explicit dump_body(std::unique_ptr<process_reader> reader)
      : reader_(std::move(reader)) {}
  int fd() const override { return reader_->stdout_fd(); }
  expected<void> finish(bool stop) override {
    auto ended = reader_->finish(stop);
    if (stop || ended.ok()) return {};
    return error{errc::tool, ended.describe("restic dump")};
  }

private:
  std::unique_ptr<process_reader> reader_;
};

} // namespace

snapshot_source snapshot_source::restic() {
  auto client = [](const config& cfg) {
    restic_client c(local_repository(cfg), std::chrono::minutes(2));
    // The console only reads: no lock that a prune would wait for, none
    // left behind by a read killed with the daemon.
    c.read_without_lock();
    return c;
  };
  snapshot_source s;
  s.snapshots = [client](const config& cfg, const std::vector<std::string>& tags) {
    return client(cfg).snapshots(tags);
  };
  s.ls = [client](const config& cfg, const std::string& id) {
    return client(cfg).ls(id);
  };
  s.dump = [client](const config& cfg, const std::string& id,
                    const std::string& path) -> expected<std::shared_ptr<body_source>> {
    auto reader = client(cfg).dump(id, path);
    if (!reader) return reader.err();
    return std::shared_ptr<body_source>(std::make_shared<dump_body>(std::move(*reader)));
  };
  return s;
}

tree_cache::tree_cache(std::size_t max_snapshots, std::size_t max_entries)
    : max_snapshots_(max_snapshots)
    , max_entries_(max_entries) {}

std::optional<tree_cache::entry> tree_cache::find(const std::string& id) {
  std::lock_guard lock(mutex_);
  for (auto it = kept_.begin(); it != kept_.end(); ++it)
    if (it->snapshot.id == id) {
      kept_.splice(kept_.begin(), kept_, it);
      return kept_.front();
    }
  return std::nullopt;
}

void tree_cache::put(entry e) {
  std::size_t n = e.nodes ? e.nodes->size() : 0;
  if (n > max_entries_ || max_snapshots_ == 0) return;
  std::lock_guard lock(mutex_);
  for (auto it = kept_.begin(); it != kept_.end(); ++it)
    if (it->snapshot.id == e.snapshot.id) {
      entries_ -= it->nodes ? it->nodes->size() : 0;
      kept_.erase(it);
      break;
    }
  while (!kept_.empty() &&
         (kept_.size() >= max_snapshots_ || entries_ + n > max_entries_)) {
    entries_ -= kept_.back().nodes ? kept_.back().nodes->size() : 0;
    kept_.pop_back();
  }
  entries_ += n;
  kept_.push_front(std::move(e));
}

std::size_t tree_cache::size() const {
  std::lock_guard lock(mutex_);
  return kept_.size();
}

/// Where a request points: the config's site and target, and how to answer.
struct snapshot_pages::place {
  const config& cfg;
  const site_config& site;
  const target_config& target;
  bool api = false;
  /// "/sites/{site}/targets/{hash}": the pages' own base.
  std::string base;
  std::vector<std::string> tags;
};

snapshot_pages::snapshot_pages(snapshot_source source,
                               std::function<std::int64_t()> clock)
    : source_(std::move(source))
    , clock_(std::move(clock)) {}

std::optional<console_answer> snapshot_pages::route(const http_request& req,
                                                    std::string_view path,
                                                    const principal& who,
                                                    const config& cfg) {
  bool api = path.substr(0, api_sites.size()) == api_sites;
  if (!api && path.substr(0, page_sites.size()) != page_sites) return std::nullopt;
  auto rest = path.substr(api ? api_sites.size() : page_sites.size());
  auto at = rest.find(targets_part);
  if (at == std::string_view::npos) return std::nullopt;
  auto site_name = url_decode(rest.substr(0, at));
  if (!site_name) return failure(req, http::status::bad_request, "malformed site name");
  rest = rest.substr(at + targets_part.size());
  auto slash = rest.find('/');
  std::string hash(rest.substr(0, slash));
  std::string_view tail =
      slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);

  const site_config* site = nullptr;
  for (const auto& s : cfg.sites)
    if (s.name == *site_name) site = &s;
  if (site == nullptr)
    return failure(req, http::status::not_found,
                   "no site \"" + *site_name + "\" in the config");
  const target_config* target = nullptr;
  for (const auto& t : site->targets)
    if (t.hash == hash) target = &t;
  if (target == nullptr)
    return failure(req, http::status::not_found,
                   "site " + site->name + " has no target with hash \"" + hash + "\"");
  place here{cfg,
             *site,
             *target,
             api,
             "/sites/" + url_encode(site->name) + "/targets/" + target->hash,
             snapshot_tags(site->uuid, target->hash)};

  bool get = req.method() == http::verb::get || req.method() == http::verb::head;
  bool post = req.method() == http::verb::post;
  constexpr std::string_view snapshots = "snapshots", snapshots_slash = "snapshots/",
                             restores = "restores", restores_slash = "restores/";
  if (tail == snapshots) {
    if (!get) return failure(req, http::status::method_not_allowed, "use GET");
    return list_snapshots(req, here, who);
  }
  if (tail == restores) {
    if (!post) return failure(req, http::status::method_not_allowed, "use POST");
    return post_restore(req, here, who);
  }
  if (!api && tail.substr(0, restores_slash.size()) == restores_slash) {
    if (!get) return failure(req, http::status::method_not_allowed, "use GET");
    auto id = parse_id(tail.substr(restores_slash.size()));
    if (!id) return failure(req, http::status::not_found, "no such restore job");
    return restore_preview(req, here, *id, who);
  }
  if (tail.substr(0, snapshots_slash.size()) == snapshots_slash) {
    auto inner = tail.substr(snapshots_slash.size());
    auto cut = inner.find('/');
    std::string id(inner.substr(0, cut));
    auto what =
        cut == std::string_view::npos ? std::string_view{} : inner.substr(cut + 1);
    if (what == "tree" || what == "download") {
      if (!get) return failure(req, http::status::method_not_allowed, "use GET");
      if (what == "tree") return tree(req, here, id, who);
      return download(req, here, id);
    }
  }
  return failure(req, http::status::not_found, "no such page");
}

http_response snapshot_pages::list_snapshots(const http_request& req, const place& at,
                                             const principal& who) {
  auto listed = source_.snapshots(at.cfg, at.tags);
  if (!listed && listed.err().code != errc::not_found) {
    spdlog::error("web console: {}", listed.err().message);
    return failure(req, http::status::internal_server_error,
                   "the repository cannot be read; see the daemon's log");
  }
  std::vector<snapshot_info> list =
      listed ? std::move(*listed) : std::vector<snapshot_info>{};
  sort_by_time(list);
  // Oldest first, exactly as `satoru snapshots --site S --target H --json`.
  json::array out;
  for (const auto& s : list)
    out.push_back(snapshot_json(at.cfg, s));
  if (wants_json(req)) return json_ok(req, http::status::ok, out);

  std::string body = header_bar("Snapshots of " + html_escape(at.target.path), who.name);
  body += "<p>" + anchor("/sites/" + url_encode(at.site.name), "Site " + at.site.name) +
          " &middot; " + html_escape(at.target.mode) + " target " +
          html_escape(at.target.hash) + "</p>";
  if (list.empty()) body += "<p class=\"note\">No snapshot yet.</p>";
  body += "<table id=\"snapshots\"><thead><tr><th>Snapshot</th><th>Time</th>"
          "<th>Host</th></tr></thead><tbody>";
  for (auto it = list.rbegin(); it != list.rend(); ++it)
    body += "<tr>" +
            cell("Snapshot",
                 anchor(at.base + "/snapshots/" + it->id + "/tree", it->short_id)) +
            cell("Time", html_escape(display_snapshot_time(*it))) +
            cell("Host", html_escape(it->hostname)) + "</tr>";
  body += "</tbody></table>";
  return html(req, http::status::ok, page("Satoru snapshots of " + at.target.path, body));
}

std::variant<tree_cache::entry, http_response>
snapshot_pages::listing(const http_request& req, const place& at,
                        const std::string& wanted) {
  auto matches = [&](const snapshot_info& s) {
    return std::all_of(at.tags.begin(), at.tags.end(), [&](const std::string& tag) {
      return std::find(s.tags.begin(), s.tags.end(), tag) != s.tags.end();
    });
  };
  if (is_full_id(wanted))
    if (auto kept = cache_.find(wanted); kept && matches(kept->snapshot))
      return std::move(*kept);
  auto unreadable = [&](const error& e) {
    spdlog::error("web console: {}", e.message);
    return failure(req, http::status::internal_server_error,
                   "the repository cannot be read; see the daemon's log");
  };
  auto listed = source_.snapshots(at.cfg, at.tags);
  if (!listed && listed.err().code != errc::not_found) return unreadable(listed.err());
  std::vector<snapshot_info> list =
      listed ? std::move(*listed) : std::vector<snapshot_info>{};
  sort_by_time(list);
  auto chosen = choose_snapshot(list, at.cfg, at.site, at.target, wanted,
                                [&] { return source_.snapshots(at.cfg, {}); });
  if (!chosen) {
    auto code = chosen.err().code;
    if (code == errc::not_found)
      return failure(req, http::status::not_found, chosen.err().message);
    if (code == errc::invalid_argument)
      return failure(req, http::status::bad_request, chosen.err().message);
    return unreadable(chosen.err());
  }
  if (auto kept = cache_.find(chosen->id)) return std::move(*kept);
  auto nodes = source_.ls(at.cfg, chosen->id);
  if (!nodes) return unreadable(nodes.err());
  tree_cache::entry e{*chosen, std::make_shared<const std::vector<snapshot_node>>(
                                   nodes_below(std::move(*nodes), ""))};
  cache_.put(e);
  return e;
}

http_response snapshot_pages::tree(const http_request& req, const place& at,
                                   const std::string& id, const principal& who) {
  auto args = parse_form(split_target({req.target().data(), req.target().size()}).second);
  if (!args) return failure(req, http::status::bad_request, "malformed query");
  auto path = snapshot_path_parameter((*args)["path"]);
  if (!path) return failure(req, http::status::bad_request, path.err().message);
  bool recursive = (*args)["recursive"] == "1";
  auto found = listing(req, at, id);
  if (auto* refused = std::get_if<http_response>(&found)) return std::move(*refused);
  const auto& [snap, nodes] = std::get<tree_cache::entry>(found);

  const snapshot_node* self = nullptr;
  std::vector<const snapshot_node*> shown;
  for (const auto& n : *nodes) {
    if (n.path == *path) self = &n;
    bool below = path->empty() || n.path.rfind(*path + "/", 0) == 0;
    if (!below || n.path == *path) continue;
    if (recursive ||
        n.path.find('/', path->empty() ? 0 : path->size() + 1) == std::string::npos)
      shown.push_back(&n);
  }
  if (!path->empty() && self == nullptr)
    return failure(req, http::status::not_found,
                   fmt::format("snapshot {} of {} has no \"{}\"", snap.short_id,
                               at.target.path, *path));
  // A file is listed as itself, as `satoru ls` lists it.
  if (self != nullptr && self->type != "dir") shown = {self};
  if (recursive && self != nullptr && self->type == "dir")
    shown.insert(shown.begin(), self);
  if (wants_json(req)) {
    json::array out;
    for (const auto* n : shown)
      out.push_back(snapshot_node_json(*n));
    return json_ok(req, http::status::ok, out);
  }

  const std::string tree_base = at.base + "/snapshots/" + snap.id;
  std::string crumbs =
      anchor(tree_base + "/tree", at.target.path.empty() ? "/" : at.target.path);
  {
    std::string so_far;
    std::size_t start = 0;
    while (!path->empty() && start <= path->size()) {
      auto slash = path->find('/', start);
      std::string part = path->substr(start, slash - start);
      so_far += (so_far.empty() ? "" : "/") + part;
      crumbs += " / " + anchor(tree_base + "/tree?path=" + url_encode(so_far), part);
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
  }
  std::string body = header_bar("Snapshot " + html_escape(snap.short_id) + " of " +
                                    html_escape(at.target.path),
                                who.name);
  body += "<p>" + anchor("/sites/" + url_encode(at.site.name), "Site " + at.site.name) +
          " &middot; " + anchor(at.base + "/snapshots", "all snapshots") + " &middot; " +
          html_escape(display_snapshot_time(snap)) + "</p>";
  body += "<p id=\"crumbs\">" + crumbs + "</p>";
  body += "<table id=\"tree\"><thead><tr><th>Name</th><th>Type</th><th>Mode</th>"
          "<th>Size</th><th>Modified</th></tr></thead><tbody>";
  if (!path->empty())
    body += "<tr>" +
            cell("Name",
                 anchor(tree_base + "/tree?path=" + url_encode(parent_of(*path)), "..")) +
            cell("Type", "dir") + cell("Mode", "") + cell("Size", "") +
            cell("Modified", "") + "</tr>";
  for (const auto* n : shown) {
    std::string name = last_part(n->path);
    std::string shown_name;
    if (n->type == "dir")
      shown_name = anchor(tree_base + "/tree?path=" + url_encode(n->path), name + "/");
    else if (n->type == "file")
      shown_name = "<a class=\"download\" href=\"" +
                   html_escape(tree_base + "/download?path=" + url_encode(n->path)) +
                   "\" download>" + html_escape(name) + "</a>";
    else
      shown_name = html_escape(name);
    body += "<tr>" + cell("Name", "<span class=\"name\">" + shown_name + "</span>") +
            cell("Type", html_escape(n->type)) +
            cell("Mode", fmt::format("{:04o}", n->mode)) + cell("Size", format_size(*n)) +
            cell("Modified", html_escape(format_time(n->mtime_ms))) + "</tr>";
  }
  body += "</tbody></table>";

  if (who.role == role::operator_) {
    const bool database = at.target.mode == "sqlite_dump";
    std::string refusal = host_restore_refusal(at.target);
    body += "<h2>Restore back to the edge host</h2>";
    if (!refusal.empty()) {
      body += "<p class=\"note\">" + html_escape(refusal) + "</p>";
    } else {
      body += "<form class=\"restore\" method=\"post\" action=\"" +
              html_escape(at.base + "/restores") +
              "\"><input type=\"hidden\" name=\"csrf\" value=\"" + html_escape(who.csrf) +
              "\"><input type=\"hidden\" name=\"snapshot\" value=\"" +
              html_escape(snap.id) + "\">";
      if (!database)
        body += "<input type=\"hidden\" name=\"path\" value=\"" + html_escape(*path) +
                "\"><p>" +
                (path->empty() ? std::string("The whole snapshot")
                               : "<code>" + html_escape(*path) + "</code>") +
                " to " + html_escape(at.site.name) + ":" + html_escape(at.target.path) +
                (path->empty() ? "" : "/" + html_escape(*path)) + "</p>" +
                "<label><input type=\"checkbox\" name=\"delete\" value=\"1\"> also "
                "delete files the snapshot does not hold</label><br>";
      else
        body += "<p>The database goes beside the live one on " +
                html_escape(at.site.name) +
                ".</p><label><input type=\"checkbox\" name=\"replace\" value=\"1\"> "
                "then replace the live database with it (stop the application "
                "first)</label><br>";
      body += "<button type=\"submit\">Preview the changes</button> <span "
              "class=\"note\">a dry run: nothing changes until you confirm "
              "it</span></form>";
    }
  }
  return html(req, http::status::ok,
              page("Satoru snapshot " + snap.short_id + " of " + at.target.path, body));
}

console_answer snapshot_pages::download(const http_request& req, const place& at,
                                        const std::string& id) {
  auto args = parse_form(split_target({req.target().data(), req.target().size()}).second);
  if (!args) return failure(req, http::status::bad_request, "malformed query");
  auto path = snapshot_path_parameter((*args)["path"]);
  if (!path) return failure(req, http::status::bad_request, path.err().message);
  if (path->empty())
    return failure(req, http::status::bad_request, "?path: give the file to download");
  auto found = listing(req, at, id);
  if (auto* refused = std::get_if<http_response>(&found)) return std::move(*refused);
  const auto& [snap, nodes] = std::get<tree_cache::entry>(found);
  auto node = std::find_if(nodes->begin(), nodes->end(),
                           [&](const snapshot_node& n) { return n.path == *path; });
  if (node == nodes->end())
    return failure(req, http::status::not_found,
                   fmt::format("snapshot {} of {} has no \"{}\"", snap.short_id,
                               at.target.path, *path));
  if (node->type != "file")
    return failure(
        req, http::status::bad_request,
        fmt::format("?path: {} is a {}; only regular files download", *path, node->type));
  console_answer answer =
      respond(req, http::status::ok, "application/octet-stream", std::string{});
  auto& res = answer.response;
  res.set(http::field::content_disposition, attachment_header(last_part(*path)));
  // The listing's size: a dump that ends short (or fails) closes the
  // connection early, which the client sees as a broken download.
  res.content_length(static_cast<std::uint64_t>(std::max<std::int64_t>(node->size, 0)));
  res.keep_alive(false);
  if (req.method() == http::verb::head) return answer;
  // The listing named it, so restic reads exactly that entry.
  auto body = source_.dump(at.cfg, snap.id, "/" + *path);
  if (!body) {
    spdlog::error("web console: {}", body.err().message);
    return failure(req, http::status::internal_server_error,
                   "the file cannot be read from the repository; see the daemon's log");
  }
  answer.body = std::move(*body);
  return answer;
}

http_response snapshot_pages::post_restore(const http_request& req, const place& at,
                                           const principal& who) {
  std::optional<std::map<std::string, std::string>> form;
  if (!at.api) form = parse_form(req.body());
  if (auto refused = refuse_change(req, who, form ? (*form)["csrf"] : ""))
    return *refused;

  std::string wanted = "latest";
  host_restore_request request;
  request.target_hash = at.target.hash;
  std::optional<std::int64_t> confirmed; ///< the dry run a page confirms
  if (at.api) {
    json::error_code ec;
    auto body = json::parse(req.body(), ec);
    const auto* obj = body.if_object();
    if (ec || obj == nullptr)
      return failure(req, http::status::bad_request,
                     "request body: must be a JSON object like {\"snapshot\": "
                     "\"latest\", \"apply\": false}");
    for (const auto& [key, value] : *obj) {
      auto wrong = [&](const char* what) {
        return failure(
            req, http::status::bad_request,
            fmt::format("request body: /{}: must be {}", std::string_view(key), what));
      };
      if (key == "snapshot" || key == "dest") {
        if (!value.is_string()) return wrong("a string");
        (key == "snapshot" ? wanted : request.dest) = std::string(value.get_string());
      } else if (key == "delete" || key == "replace" || key == "apply") {
        if (!value.is_bool()) return wrong("true or false");
        (key == "delete"    ? request.delete_extra
         : key == "replace" ? request.replace
                            : request.apply) = value.get_bool();
      } else if (key == "paths") {
        if (!value.is_array()) return wrong("an array of paths");
        for (const auto& p : value.get_array()) {
          if (!p.is_string()) return wrong("an array of paths");
          request.paths.emplace_back(p.get_string());
        }
      } else {
        return failure(req, http::status::bad_request,
                       fmt::format("request body: /{}: no such field (snapshot, paths, "
                                   "dest, delete, replace, apply)",
                                   std::string_view(key)));
      }
    }
  } else if (!form) {
    return failure(req, http::status::bad_request, "malformed form");
  } else if (auto c = form->find("confirm"); c != form->end()) {
    // The preview's "Restore": exactly the dry run's request, applied.
    confirmed = parse_id(c->second);
    if (!confirmed)
      return failure(req, http::status::bad_request, "confirm: not a restore job id");
  } else {
    if (!(*form)["snapshot"].empty()) wanted = (*form)["snapshot"];
    if (!(*form)["path"].empty()) request.paths.push_back((*form)["path"]);
    request.delete_extra = (*form)["delete"] == "1";
    request.replace = (*form)["replace"] == "1";
    // A page never applies without the preview's confirmation.
  }

  if (confirmed) {
    auto db = store::open_read_only(at.cfg.database_path);
    if (!db) return failure(req, http::status::not_found, "no restore job to confirm");
    auto job = db->get_job(*confirmed);
    if (!job) {
      spdlog::error("web console: {}", job.err().message);
      return failure(req, http::status::internal_server_error,
                     "the database cannot be read; see the daemon's log");
    }
    auto previewed =
        *job && (*job)->type == job_type::restore && (*job)->site_name == at.site.name
            ? host_restore_request::from_json((*job)->params)
            : expected<host_restore_request>(error{errc::not_found, "not a restore job"});
    if (!previewed || previewed->target_hash != at.target.hash || previewed->apply)
      return failure(req, http::status::bad_request,
                     fmt::format("confirm: job {} is not a dry run of a restore of {}",
                                 *confirmed, at.target.path));
    if ((*job)->status != job_status::success && (*job)->status != job_status::warning)
      return failure(req, http::status::conflict,
                     fmt::format("confirm: the dry run (job {}) has not succeeded ({})",
                                 *confirmed, to_string((*job)->status)));
    request = std::move(*previewed);
    request.apply = true;
  } else {
    for (auto& p : request.paths) {
      auto clean = snapshot_path_parameter(p);
      if (!clean || clean->empty())
        return failure(req, http::status::bad_request,
                       "paths: " + p +
                           ": give a file or folder relative to the target's root");
      p = *clean;
    }
    if (!request.dest.empty())
      request.dest = std::filesystem::path(request.dest).lexically_normal().string();
    host_restore_option_names names{"paths", "dest", "delete", "replace"};
    if (auto problem = host_restore_request_problem(at.target, request, names);
        !problem.empty())
      return failure(req, http::status::bad_request, problem);
    auto found = listing(req, at, wanted);
    if (auto* refused = std::get_if<http_response>(&found)) return std::move(*refused);
    const auto& [snap, nodes] = std::get<tree_cache::entry>(found);
    for (const auto& p : request.paths)
      if (std::none_of(nodes->begin(), nodes->end(),
                       [&](const snapshot_node& n) { return n.path == p; }))
        return failure(req, http::status::not_found,
                       fmt::format("paths: snapshot {} of {} has no \"{}\"",
                                   snap.short_id, at.target.path, p));
    request.snapshot_id = snap.id;
    request.snapshot_path = snap.paths.size() == 1 ? snap.paths.front() : std::string{};
  }

  // A confirmation is used once: the store queues it only if no other
  // confirmation of that dry run did, and only within the hour.
  auto queued =
      confirmed ? queue_confirmed_restore(at.cfg, at.site.name, *confirmed,
                                          request.to_json(), requester_of(who), clock_())
                : queue_site_job(at.cfg, at.site.name, job_type::restore,
                                 request.to_json(), requester_of(who));
  if (!queued && confirmed && queued.err().code == errc::busy)
    return failure(req, http::status::conflict, "confirm: " + queued.err().message);
  if (!queued && confirmed && queued.err().code == errc::timeout)
    return failure(req, http::status::gone, "confirm: " + queued.err().message);
  if (!queued) return queue_failure(req, queued.err());
  spdlog::info("web console: {} queued a restore{} of {} {} to its edge host (job {})",
               who.name, request.apply ? "" : " dry run", at.site.name, at.target.path,
               queued->id);
  if (!at.api)
    return redirect(req, request.apply
                             ? "/jobs/" + std::to_string(queued->id)
                             : at.base + "/restores/" + std::to_string(queued->id));
  json::object out{{"id", queued->id},       {"site", at.site.name},
                   {"type", "restore"},      {"snapshot_id", request.snapshot_id},
                   {"apply", request.apply}, {"existing", queued->existing}};
  auto res = json_ok(req, http::status::accepted, out);
  res.set(http::field::location, "/api/v1/jobs/" + std::to_string(queued->id));
  return res;
}

http_response snapshot_pages::restore_preview(const http_request& req, const place& at,
                                              std::int64_t job_id, const principal& who) {
  auto db = store::open_read_only(at.cfg.database_path);
  if (!db) return failure(req, http::status::not_found, "no such restore job");
  auto row = db->get_job(job_id);
  auto detail = job_detail_json(&*db, job_id);
  if (!row || !detail) {
    spdlog::error("web console: {}", (!row ? row.err() : detail.err()).message);
    return failure(req, http::status::internal_server_error,
                   "the database cannot be read; see the daemon's log");
  }
  auto request = *row && (*row)->type == job_type::restore
                     ? host_restore_request::from_json((*row)->params)
                     : expected<host_restore_request>(error{errc::not_found, ""});
  if (!*detail || !request || request->target_hash != at.target.hash ||
      (*row)->site_name != at.site.name)
    return failure(req, http::status::not_found,
                   fmt::format("no restore job {} of {}", job_id, at.target.path));
  json::value changes = nullptr;
  for (const auto& e : (**detail).at("events").as_array())
    if (e.at("step") == restore_changes_step && e.as_object().contains("data"))
      changes = e.at("data");
  const auto status = (*row)->status;
  const bool ended = status != job_status::queued && status != job_status::running;
  if (wants_json(req))
    return json_ok(req, http::status::ok,
                   json::object{{"job", **detail},
                                {"request", json::parse(request->to_json())},
                                {"changes", changes}});

  std::string body = header_bar((request->apply ? "Restore " : "Restore preview ") +
                                    std::to_string(job_id),
                                who.name);
  body += fmt::format(
      "<p>{} of {} &middot; {} &middot; job {} <span id=\"status\" class=\"status "
      "{}\">{}</span></p>",
      html_escape(at.target.path),
      anchor("/sites/" + url_encode(at.site.name), at.site.name),
      request->paths.empty() ? std::string("the whole snapshot")
                             : html_escape(request->paths.front()),
      anchor("/jobs/" + std::to_string(job_id), std::to_string(job_id)),
      to_string(status), to_string(status));
  if (!ended)
    body += "<p class=\"note\">The dry run has not ended yet: " +
            anchor(at.base + "/restores/" + std::to_string(job_id), "reload this page") +
            " or follow " + anchor("/jobs/" + std::to_string(job_id), "the job") +
            ".</p>";
  if (!(*row)->error.empty())
    body += "<p class=\"error\">" + html_escape((*row)->error) + "</p>";
  if (changes.is_object()) {
    const auto& c = changes.as_object();
    const bool deletes = c.at("delete").as_bool();
    body += "<p>" + html_escape(std::string(c.at("destination").as_string())) +
            "</p><table id=\"changes\"><thead><tr><th>Change</th><th>Path</th></tr>"
            "</thead><tbody>";
    for (auto [key, label] :
         {std::pair{"created", "create"}, std::pair{"updated", "update"},
          std::pair{"deleted", deletes ? "delete" : "only on the host (kept)"}})
      for (const auto& p : c.at(key).as_array())
        body += "<tr>" + cell("Change", label) +
                cell("Path", html_escape(std::string(p.as_string()))) + "</tr>";
    body += "</tbody></table>";
  }
  bool may_confirm = who.role == role::operator_ && !request->apply &&
                     (status == job_status::success || status == job_status::warning) &&
                     (*row)->finished_at >= clock_() - confirmation_valid_ms;
  if (may_confirm)
    body += "<form class=\"confirm\" method=\"post\" action=\"" +
            html_escape(at.base + "/restores") +
            "\"><input type=\"hidden\" name=\"csrf\" value=\"" + html_escape(who.csrf) +
            "\"><input type=\"hidden\" name=\"confirm\" value=\"" +
            std::to_string(job_id) + "\"><button type=\"submit\">Restore: make these " +
            "changes on " + html_escape(at.site.name) + "</button>" +
            (request->delete_extra ? " <span class=\"note\">deletes what the snapshot "
                                     "does not hold</span>"
                                   : std::string{}) +
            (request->replace ? " <span class=\"note\">replaces the live "
                                "database</span>"
                              : std::string{}) +
            "</form>";
  return html(req, http::status::ok,
              page("Satoru restore " + std::to_string(job_id), body));
}

} // namespace satoru::web
