#include "satoru/web/detail_pages.hpp"

#include "satoru/web/http_text.hpp"
#include "satoru/web/page.hpp"

#include <boost/json/serialize.hpp>
#include <fmt/format.h>

namespace satoru::web {

namespace json = boost::json;

namespace {

/// A field of a JSON object as escaped text: strings as they are, other
/// values serialized, null and "" as "-".
std::string text(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return v->get_string().empty() ? "-" : html_escape(v->get_string());
  return html_escape(json::serialize(*v));
}

} // namespace

std::string cell(const char* label, const std::string& escaped) {
  return fmt::format("<td data-label=\"{}\">{}</td>", label, escaped);
}

std::string header_bar(const std::string& title, const std::string& user) {
  return "<header><h1>" + title + "</h1><span><a href=\"/\">Fleet</a> &middot; " +
         html_escape(user) + "</span></header>";
}

namespace {

std::string job_link(const json::object& j) {
  return "<a href=\"/jobs/" + text(j, "id") + "\">" + text(j, "id") + "</a>";
}

/// A button that queues a job of `type` for `site` (operators only).
std::string queue_form(const std::string& site, const char* type, const char* label,
                       const std::string& csrf) {
  return "<form class=\"inline queue-" + std::string(type) +
         "\" method=\"post\" action=\"/sites/" + html_escape(site) +
         "/jobs\"><input type=\"hidden\" name=\"csrf\" value=\"" + html_escape(csrf) +
         "\"><input type=\"hidden\" name=\"type\" value=\"" + type +
         "\"><button type=\"submit\">" + label + "</button></form>";
}

} // namespace

std::string site_html(const json::object& site, const json::array& jobs,
                      const std::string& user, const std::string& csrf) {
  std::string name(site.at("name").as_string());
  std::string body = header_bar("Site " + html_escape(name), user);
  body +=
      fmt::format("<p><span class=\"health {}\">{}</span> {}</p>", text(site, "health"),
                  text(site, "health"), text(site, "health_reason"));
  if (!csrf.empty())
    body += "<p>" + queue_form(name, "preflight", "Preflight", csrf) + " " +
            queue_form(name, "backup", "Back up now", csrf) + "</p>";
  body += "<h2>Targets</h2><table><thead><tr><th>Path</th><th>Mode</th><th>Last "
          "status</th><th>Bytes</th><th>Files</th><th>Last snapshot</th><th>Last "
          "verified</th></tr></thead><tbody>";
  for (const auto& value : site.at("targets").as_array()) {
    const auto& t = value.as_object();
    // The path opens the target's snapshots (snapshot_pages.cpp).
    std::string snapshots = "/sites/" + url_encode(name) + "/targets/" +
                            url_encode(std::string(t.at("hash").as_string())) +
                            "/snapshots";
    body += "<tr>" +
            cell("Path", "<a class=\"snapshots\" href=\"" + html_escape(snapshots) +
                             "\">" + text(t, "path") + "</a>") +
            cell("Mode", text(t, "mode")) + cell("Last status", text(t, "last_status")) +
            cell("Bytes", text(t, "last_bytes")) + cell("Files", text(t, "last_files")) +
            cell("Last snapshot", text(t, "last_snapshot_id")) +
            cell("Last verified", text(t, "last_verified_at")) + "</tr>";
  }
  body +=
      "</tbody></table><h2>Recent jobs</h2><table><thead><tr><th>Job</th><th>Type</th>"
      "<th>Status</th><th>Created</th><th>Error</th></tr></thead><tbody>";
  for (const auto& value : jobs) {
    const auto& j = value.as_object();
    body += "<tr>" + cell("Job", job_link(j)) + cell("Type", text(j, "type")) +
            cell("Status", text(j, "status")) + cell("Created", text(j, "created_at")) +
            cell("Error", text(j, "error")) + "</tr>";
  }
  body += "</tbody></table>";
  return page("Satoru site " + name, body);
}

std::string job_html(const json::object& job, const std::string& user,
                     const std::string& csrf) {
  std::string status(job.at("status").as_string());
  bool live = status == "queued" || status == "running";
  std::int64_t last_event = 0;
  const auto& events = job.at("events").as_array();
  if (!events.empty()) last_event = events.back().at("id").to_number<std::int64_t>();
  std::string site = text(job, "site");
  std::string body = header_bar("Job " + text(job, "id"), user);
  body += fmt::format(
      "<div id=\"job\" data-job=\"{}\" data-last-event=\"{}\" data-live=\"{}\"><p>{} of "
      "{} &middot; <span id=\"status\" class=\"status {}\">{}</span></p><p "
      "class=\"note\">created {} &middot; started {} &middot; finished {} &middot; "
      "attempts {}</p><p class=\"error\">{}</p></div>",
      text(job, "id"), last_event, live ? 1 : 0, text(job, "type"),
      site == "-" ? std::string("the repository")
                  : "<a href=\"/sites/" + site + "\">" + site + "</a>",
      html_escape(status), html_escape(status), text(job, "created_at"),
      text(job, "started_at"), text(job, "finished_at"), text(job, "attempts"),
      job.at("error").as_string().empty() ? "" : text(job, "error"));
  if (live && !csrf.empty())
    body += "<form class=\"cancel\" method=\"post\" action=\"/jobs/" + text(job, "id") +
            "/cancel\"><input type=\"hidden\" name=\"csrf\" value=\"" +
            html_escape(csrf) +
            "\"><button type=\"submit\">Cancel this job</button> <span "
            "class=\"note\">stops it now; it ends cancelled and does not run "
            "again</span></form>";
  // The running steps' status lines, filled in live by assets/job.js.
  if (live) body += "<div id=\"progress\" class=\"note\"></div>";
  body += "<table><thead><tr><th>Time</th><th>Level</th><th>Step</th><th>Target</th>"
          "<th>Message</th></tr></thead><tbody id=\"events\">";
  for (const auto& value : events) {
    const auto& e = value.as_object();
    body += "<tr>" + cell("Time", text(e, "time")) + cell("Level", text(e, "level")) +
            cell("Step", text(e, "step")) + cell("Target", text(e, "target")) +
            cell("Message", text(e, "message")) + "</tr>";
  }
  body += "</tbody></table>";
  if (live) body += "<script src=\"/assets/job.js\"></script>";
  return page("Satoru job " + text(job, "id"), body);
}

std::string_view job_script() {
  return R"js(// Follows the job page's events and progress live (Server-Sent Events) until
// the job ends.
(function () {
  var root = document.getElementById('job');
  if (!root || root.getAttribute('data-live') !== '1' || !window.EventSource) return;
  var rows = document.getElementById('events');
  var status = document.getElementById('status');
  var seen = Number(root.getAttribute('data-last-event'));
  var source = new EventSource('/api/v1/jobs/' + root.getAttribute('data-job') + '/events');
  function cell(tr, label, text) {
    var td = document.createElement('td');
    td.setAttribute('data-label', label);
    td.textContent = text || '-';
    tr.appendChild(td);
  }
  source.addEventListener('event', function (m) {
    var e = JSON.parse(m.data);
    if (e.id <= seen) return;
    seen = e.id;
    var tr = document.createElement('tr');
    cell(tr, 'Time', e.time);
    cell(tr, 'Level', e.level);
    cell(tr, 'Step', e.step);
    cell(tr, 'Target', e.target);
    cell(tr, 'Message', e.message);
    rows.appendChild(tr);
  });
  var progress = document.getElementById('progress');
  var lines = {};
  source.addEventListener('progress', function (m) {
    var p = JSON.parse(m.data);
    var key = p.target + '/' + p.step;
    if (!lines[key]) {
      lines[key] = document.createElement('p');
      progress.appendChild(lines[key]);
    }
    lines[key].textContent = p.line + (p.ended ? ' (done)' : '');
  });
  source.addEventListener('end', function (m) {
    var job = JSON.parse(m.data);
    status.textContent = job.status;
    status.className = 'status ' + job.status;
    source.close();
  });
})();
)js";
}

} // namespace satoru::web
