#pragma once

/// Progress of long work (a pull, a snapshot, an off-site copy, a restore):
/// one model for every step, fed by the tools' own progress output. rsync
/// (--info=progress2), restic backup (--json status lines) and restic copy
/// (its text meter) each say how far they are; restic restore says nothing,
/// so the bytes it writes are counted instead. This turns them into one
/// shape, with a smoothed rate and an ETA, for the CLI, metrics, events, and
/// the no-progress watchdog ("no bytes for N minutes").

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace satoru {

/// Which tool's progress output a child prints.
enum class progress_format {
  none,
  rsync_progress2, ///< "  20,676,608  41%  19.69MB/s  0:00:01 (xfr#1, to-chk=1/3)"
  restic_json,     ///< {"message_type":"status","percent_done":…,"bytes_done":…}
  restic_copy,     ///< "[0:01] 42.00%  4 / 10 packs copied"
  /// No meter on stdout: the bytes the program itself has written (its
  /// /proc/PID/io `wchar`), sampled about once a second while it runs; a
  /// program that exits 0 has written everything it had to
  /// (process_spec::progress_bytes_total).
  written_bytes,
};

/// What one line of a tool's output says. Fields the tool does not give are
/// empty.
struct progress_sample {
  std::optional<std::uint64_t> bytes_done;
  std::optional<std::uint64_t> bytes_total;
  std::optional<std::uint64_t> files_done;
  std::optional<std::uint64_t> files_total;
  std::optional<double> fraction; ///< 0..1, when the tool says it
};

/// The sample in one line of `format`, or nothing for other lines (stats,
/// messages, partial lines).
std::optional<progress_sample> parse_progress(progress_format format,
                                              std::string_view line);

/// restic 0.14's copy meter counts packs, with one meter per snapshot it
/// copies ("copy started", "6 / 6 packs copied", then "copy started", "1 /
/// 1" for the next snapshot). This reads restic copy's output lines, adds
/// the meters up (the total grows as restic announces each snapshot's packs)
/// and turns packs into bytes with the source repository's mean pack size:
/// an estimate, since restic does not say which packs it copies.
class copy_bytes_estimate {
public:
  /// `mean_pack_bytes` 0 = unknown: packs only.
  explicit copy_bytes_estimate(std::uint64_t mean_pack_bytes)
      : mean_pack_bytes_(mean_pack_bytes) {}
  /// One line of restic copy's output → packs and bytes of the whole copy
  /// so far, or nothing for lines that are not its meter.
  std::optional<progress_sample> operator()(std::string_view line);

private:
  std::uint64_t mean_pack_bytes_;
  std::uint64_t ended_done_ = 0, ended_total_ = 0; ///< packs of the meters that ended
  std::uint64_t done_ = 0, total_ = 0;             ///< the current meter's
};

/// A running step's progress as shown to people and metrics.
struct progress {
  std::string step; ///< "pull", "snapshot", "copy", …
  std::uint64_t bytes_done = 0;
  std::uint64_t bytes_total = 0; ///< 0 = unknown
  std::uint64_t files_done = 0;
  std::uint64_t files_total = 0;  ///< 0 = unknown
  double fraction = -1;           ///< 0..1, -1 = unknown
  double rate_bytes_per_s = 0;    ///< smoothed
  std::int64_t eta_seconds = -1;  ///< -1 = unknown
  std::int64_t changed_at_ms = 0; ///< when bytes or files last moved (unix ms)

  /// "1.2 GiB / 4.0 GiB  31.0 MiB/s  ETA 1m32s" (parts unknown are left out).
  std::string describe() const;
};

/// Turns a tool's samples into progress: keeps the last values, smooths the
/// rate (exponentially, over about 10 s) and derives the ETA.
class progress_meter {
public:
  explicit progress_meter(std::string step, std::int64_t started_ms);

  /// Feeds one sample seen at `now_ms`; true when bytes or files moved.
  bool update(const progress_sample& sample, std::int64_t now_ms);
  const progress& current() const { return current_; }
  /// Milliseconds since bytes or files last moved (or since the start).
  std::int64_t idle_ms(std::int64_t now_ms) const {
    return now_ms - current_.changed_at_ms;
  }

private:
  progress current_;
  std::int64_t rate_at_ms_;
  std::uint64_t rate_bytes_ = 0;
};

} // namespace satoru
