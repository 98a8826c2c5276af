#pragma once

/// What an operator learns when a plugin crashes the process (SIGSEGV,
/// SIGBUS, SIGILL, SIGFPE or SIGABRT in a handler's code). Plugins run in
/// satoru's own process, so such a crash ends it: the daemon stops, systemd
/// starts it again, and the recovery queues the job again (at most
/// max_recoveries times). Before the process dies, the thread that crashed
/// names the plugin call it was in on stderr (the journal) and in a note
/// beside the database; the next process turns the note into a `fail` event
/// of that job (step "plugin"), before the recovery's own event.

#include "satoru/store.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace satoru {

/// The note a crashing plugin call leaves for the next process.
std::string plugin_crash_note_path(const std::string& database_path);

/// Installs the crash report once per process, writing notes to
/// `note_path`. Leaves a signal alone whose handler someone else (a
/// sanitizer) installed.
void install_plugin_crash_report(const std::string& note_path);

/// Marks this thread as running `call` ("pull", "preflight") of `plugin` for
/// `target` of `site` in job `job_id` while it lives.
class plugin_call_scope {
public:
  plugin_call_scope(std::string_view plugin, std::string_view call,
                    std::string_view target, std::string_view site, std::int64_t job_id);
  ~plugin_call_scope();
  plugin_call_scope(const plugin_call_scope&) = delete;
  plugin_call_scope& operator=(const plugin_call_scope&) = delete;
};

/// Turns the notes at `note_path` into `fail` events ("plugin crashed
/// (SIGSEGV) in pull of /srv") of their jobs, then removes the file.
void record_plugin_crashes(store& db, const std::string& note_path);

} // namespace satoru
