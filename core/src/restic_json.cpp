#include "restic_json.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <cctype>
#include <limits>
#include <system_error>

namespace satoru::restic_json {
namespace {

namespace json = boost::json;

/// Parses without exceptions: restic output that is not JSON is an error
/// value for the caller, never a throw across the API.
std::optional<json::value> parse_value(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return std::nullopt;
  return v;
}

std::int64_t int_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) {
    auto u = v->get_uint64();
    constexpr auto max =
        static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(u > max ? max : u);
  }
  if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
  return 0;
}

double double_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr) return 0;
  if (v->is_double()) return v->get_double();
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  return 0;
}

std::string string_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr || !v->is_string()) return {};
  return std::string(v->get_string().data(), v->get_string().size());
}

/// restic prints `null` for empty lists (tags, remove); both mean "none".
std::vector<std::string> string_list(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr || !v->is_array()) return out;
  for (const auto& item : v->get_array())
    if (item.is_string())
      out.emplace_back(item.get_string().data(), item.get_string().size());
  return out;
}

const json::array* array_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  return v != nullptr && v->is_array() ? &v->get_array() : nullptr;
}

snapshot_info to_snapshot(const json::object& o) {
  snapshot_info s;
  s.id = string_field(o, "id");
  s.short_id = string_field(o, "short_id");
  if (s.short_id.empty()) s.short_id = s.id.substr(0, 8);
  s.time = string_field(o, "time");
  s.hostname = string_field(o, "hostname");
  s.paths = string_list(o, "paths");
  s.tags = string_list(o, "tags");
  s.original = string_field(o, "original");
  return s;
}

/// restic marshals Go error values as their struct fields; for the common
/// *fs.PathError that is {"Op":"open","Path":"x","Err":13}.
std::string describe_go_error(const json::value& v) {
  if (v.is_string()) return std::string(v.get_string().data(), v.get_string().size());
  if (!v.is_object()) return {};
  const auto& o = v.get_object();
  std::string op = string_field(o, "Op");
  const json::value* err = o.if_contains("Err");
  std::string why;
  if (err != nullptr && (err->is_int64() || err->is_uint64()))
    why = std::generic_category().message(static_cast<int>(int_field(o, "Err")));
  else if (err != nullptr)
    why = describe_go_error(*err);
  if (!op.empty() && !why.empty()) return op + ": " + why;
  if (!why.empty()) return why;
  if (o.empty()) return {};
  return json::serialize(v);
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm), so
/// that parsing does not depend on the process's time zone (no mktime).
std::int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<std::int64_t>(era) * 146097 + doe - 719468;
}

} // namespace

std::optional<backup_summary> parse_backup_summary(std::string_view line) {
  if (line.find("summary") == std::string_view::npos) return std::nullopt;
  auto v = parse_value(line);
  if (!v || !v->is_object()) return std::nullopt;
  const auto& o = v->get_object();
  if (string_field(o, "message_type") != "summary") return std::nullopt;
  backup_summary s;
  s.snapshot_id = string_field(o, "snapshot_id");
  s.files_new = int_field(o, "files_new");
  s.files_changed = int_field(o, "files_changed");
  s.files_unmodified = int_field(o, "files_unmodified");
  s.dirs_new = int_field(o, "dirs_new");
  s.dirs_changed = int_field(o, "dirs_changed");
  s.data_added = int_field(o, "data_added");
  s.total_files_processed = int_field(o, "total_files_processed");
  s.total_bytes_processed = int_field(o, "total_bytes_processed");
  s.total_duration = double_field(o, "total_duration");
  return s;
}

std::optional<std::string> parse_error_line(std::string_view line) {
  if (line.empty() || line.front() != '{') return std::nullopt;
  auto v = parse_value(line);
  if (!v || !v->is_object()) return std::nullopt;
  const auto& o = v->get_object();
  if (string_field(o, "message_type") != "error") return std::nullopt;
  std::string item = string_field(o, "item");
  std::string during = string_field(o, "during");
  std::string why;
  if (const json::value* e = o.if_contains("error")) why = describe_go_error(*e);
  if (why.empty()) why = during.empty() ? "error" : "error during " + during;
  return item.empty() ? why : item + ": " + why;
}

expected<std::vector<snapshot_info>> parse_snapshots(std::string_view text) {
  auto v = parse_value(text);
  if (!v || !v->is_array())
    return error{errc::tool, "restic snapshots printed no JSON list"};
  std::vector<snapshot_info> out;
  for (const auto& item : v->get_array())
    if (item.is_object()) out.push_back(to_snapshot(item.get_object()));
  return out;
}

namespace {

/// Calls `each` with every line of `text` that is a JSON object; an error
/// when no line is (restic printed something else).
template <class F> expected<void> for_each_object_line(std::string_view text, F each) {
  bool any = false;
  while (!text.empty()) {
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (line.empty() || line.front() != '{') continue;
    auto v = parse_value(line);
    if (!v || !v->is_object()) continue;
    any = true;
    each(v->get_object());
  }
  if (!any) return error{errc::tool, "restic printed no JSON"};
  return {};
}

} // namespace

expected<std::vector<snapshot_node>> parse_ls(std::string_view text) {
  std::vector<snapshot_node> out;
  auto r = for_each_object_line(text, [&](const json::object& o) {
    if (string_field(o, "struct_type") != "node") return;
    snapshot_node n;
    n.path = string_field(o, "path");
    n.type = string_field(o, "type");
    n.size = int_field(o, "size");
    n.mode = static_cast<std::uint32_t>(int_field(o, "mode")) & 0777u;
    n.uid = int_field(o, "uid");
    n.gid = int_field(o, "gid");
    if (auto ns = parse_time(string_field(o, "mtime"))) n.mtime_ms = *ns / 1'000'000;
    out.push_back(std::move(n));
  });
  if (!r) return r.err();
  return out;
}

expected<std::vector<snapshot_change>> parse_diff(std::string_view text) {
  std::vector<snapshot_change> out;
  bool stats = false;
  auto r = for_each_object_line(text, [&](const json::object& o) {
    auto type = string_field(o, "message_type");
    stats = stats || type == "statistics";
    auto modifier = string_field(o, "modifier");
    if (type != "change" || modifier.empty()) return;
    out.push_back(snapshot_change{string_field(o, "path"), modifier.front()});
  });
  if (!r) return r.err();
  if (!stats) return error{errc::tool, "restic diff printed no statistics line"};
  return out;
}

expected<std::vector<forget_group>> parse_forget(std::string_view text) {
  std::vector<forget_group> out;
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return out;
  auto v = parse_value(text);
  if (!v || !v->is_array())
    return error{errc::tool, "restic forget printed no JSON list"};
  for (const auto& item : v->get_array()) {
    if (!item.is_object()) continue;
    const auto& o = item.get_object();
    forget_group g;
    g.tags = string_list(o, "tags");
    if (const auto* keep = array_field(o, "keep"))
      g.kept = static_cast<std::int64_t>(keep->size());
    if (const auto* remove = array_field(o, "remove")) {
      g.removed = static_cast<std::int64_t>(remove->size());
      for (const auto& s : *remove)
        if (s.is_object()) g.removed_ids.push_back(string_field(s.get_object(), "id"));
    }
    out.push_back(std::move(g));
  }
  return out;
}

expected<repo_stats> parse_stats(std::string_view text) {
  auto v = parse_value(text);
  if (!v || !v->is_object())
    return error{errc::tool, "restic stats printed no JSON object"};
  const auto& o = v->get_object();
  repo_stats s;
  s.total_size = int_field(o, "total_size");
  s.total_blob_count = int_field(o, "total_blob_count");
  s.snapshots_count = int_field(o, "snapshots_count");
  return s;
}

expected<restic_lock> parse_lock(std::string_view text) {
  auto v = parse_value(text);
  if (!v || !v->is_object())
    return error{errc::tool, "restic cat lock printed no JSON object"};
  const auto& o = v->get_object();
  restic_lock l;
  l.hostname = string_field(o, "hostname");
  l.username = string_field(o, "username");
  l.pid = int_field(o, "pid");
  l.uid = int_field(o, "uid");
  const json::value* exclusive = o.if_contains("exclusive");
  l.exclusive = exclusive != nullptr && exclusive->is_bool() && exclusive->get_bool();
  auto ns = parse_time(string_field(o, "time"));
  l.time_ms = ns ? *ns / 1'000'000 : 0;
  return l;
}

std::optional<std::int64_t> parse_time(std::string_view t) {
  int y, mo, d, h, mi, s;
  if (!digits(t, 0, 4, y) || t.size() < 19 || t[4] != '-' || !digits(t, 5, 2, mo) ||
      t[7] != '-' || !digits(t, 8, 2, d) || (t[10] != 'T' && t[10] != ' ') ||
      !digits(t, 11, 2, h) || t[13] != ':' || !digits(t, 14, 2, mi) || t[16] != ':' ||
      !digits(t, 17, 2, s))
    return std::nullopt;
  std::size_t pos = 19;
  std::int64_t nanos = 0;
  if (pos < t.size() && t[pos] == '.') {
    ++pos;
    int count = 0;
    while (pos < t.size() && std::isdigit(static_cast<unsigned char>(t[pos]))) {
      if (count < 9) {
        nanos = nanos * 10 + (t[pos] - '0');
        ++count;
      }
      ++pos;
    }
    for (; count < 9; ++count)
      nanos *= 10;
  }
  std::int64_t offset_seconds = 0;
  if (pos < t.size() && (t[pos] == 'Z' || t[pos] == 'z')) {
    ++pos;
  } else if (pos < t.size() && (t[pos] == '+' || t[pos] == '-')) {
    int oh, om;
    if (!digits(t, pos + 1, 2, oh) || pos + 3 >= t.size() || t[pos + 3] != ':' ||
        !digits(t, pos + 4, 2, om))
      return std::nullopt;
    offset_seconds = (oh * 3600 + om * 60) * (t[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != t.size()) return std::nullopt;
  std::int64_t seconds =
      days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset_seconds;
  return seconds * 1000000000 + nanos;
}

} // namespace satoru::restic_json
