#pragma once

/// How the CLI shows the live progress of a followed job (`run --wait`,
/// `job --follow`) among the job's event lines, and the progress columns of
/// `jobs` and `sites`. The values come from the job_progress table
/// (store::list_progress), which the daemon or the in-process runner writes.

#include "satoru/progress.hpp"
#include "satoru/store.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

namespace satoru {

/// "[/srv/db] pull 1.2 GiB / 4.0 GiB (30%)  31.0 MiB/s  ETA 1m32s"
std::string progress_line(const std::string& label, const progress& now);

/// {"type":"progress","job_id":…,"target":…,"step":…,"bytes_done":…,…,
/// "ended":false,"time":…}: one JSON line of `--json` output.
boost::json::object progress_json(const progress_row& row);

/// How far a job's running steps are, 0..1: bytes done of the bytes they
/// move when every running step knows its total, else the mean of the
/// fractions they know; nothing when none of them says.
std::optional<double> running_fraction(const std::vector<progress_row>& rows,
                                       std::int64_t job_id);

/// "pull 43%", "snapshot", "pull 40%, snapshot" for the running steps of a
/// job, "" when it has none.
std::string running_steps(const std::vector<progress_row>& rows, std::int64_t job_id);

/// The live progress of a followed job, printed among its event lines.
/// - terminal: one status line per running step below the events, redrawn
///   in place (carriage return, cursor up, erase); an event line is printed
///   above them. Lines are cut to the terminal's width so that redrawing
///   never miscounts wrapped lines.
/// - plain (pipes, logs): a status line per running step at most every
///   `plain_interval_ms` (10 s), and only when it moved.
/// - json: a progress JSON line whenever a step's row changed, and one when
///   it ended (its last values, "ended": true).
class progress_display {
public:
  enum class mode { terminal, plain, json };
  static constexpr std::int64_t plain_interval_ms = 10'000;

  /// `label` names a target in status lines (a hash → its path); `width`
  /// is the terminal's (columns).
  progress_display(std::ostream& out, mode how,
                   std::function<std::string(const std::string&)> label = {},
                   int width = 80);
  ~progress_display() { clear(); }
  progress_display(const progress_display&) = delete;
  progress_display& operator=(const progress_display&) = delete;

  /// Prints a (formatted) event line above the live lines.
  void line(const std::string& text);
  /// The followed job's progress rows as they are now.
  void update(const std::vector<progress_row>& rows, std::int64_t now_ms);
  /// Erases the live lines (the job ended, or the follow stops).
  void clear();

private:
  using key = std::tuple<std::int64_t, std::string, std::string>; ///< job, target, step
  struct seen {
    std::int64_t updated_at = 0;
    std::int64_t ended_at = 0;
    std::int64_t printed_ms = -1;    ///< plain mode: when its last line was printed
    std::int64_t printed_update = 0; ///< plain mode: the updated_at it showed
  };
  std::string label_of(const progress_row& row) const;
  void draw();

  std::ostream& out_;
  mode how_;
  std::function<std::string(const std::string&)> label_;
  int width_;
  std::map<key, seen> seen_;
  std::vector<std::string> live_; ///< terminal: the status lines on screen
};

} // namespace satoru
