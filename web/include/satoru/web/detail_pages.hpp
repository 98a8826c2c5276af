#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <string>
#include <string_view>

namespace satoru::web {

/// A `<td>` with its label for the phone layout (`escaped` is HTML already).
std::string cell(const char* label, const std::string& escaped);

/// The pages' title bar: `title` (HTML already), a link to the fleet and
/// the user's name.
std::string header_bar(const std::string& title, const std::string& user);

/// The site page, from the site's and its recent jobs' JSON (the API's
/// own answers): its targets with mode, last status, bytes, files, last
/// snapshot and last verification, its recent jobs, and for operators
/// (`csrf` not empty) the "Preflight" and "Back up now" buttons, forms that
/// POST with the session's CSRF token. Every value is HTML-escaped.
std::string site_html(const boost::json::object& site, const boost::json::array& jobs,
                      const std::string& user, const std::string& csrf);

/// The job page, from `satoru job ID --json`'s JSON: its header, its
/// events, and while it has not ended the script (assets/job.js) that
/// appends new events and the final status as they come (Server-Sent
/// Events). With `csrf` (an operator's session) a job that has not ended
/// gets a "Cancel" button.
std::string job_html(const boost::json::object& job, const std::string& user,
                     const std::string& csrf = {});

/// The job page's script: plain JavaScript served from the binary at
/// /assets/job.js (the pages allow scripts from the console only).
std::string_view job_script();

} // namespace satoru::web
