#include "satoru/plugin_crash.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>

#include <fcntl.h>
#include <unistd.h>

namespace satoru {

namespace {

/// The words around the signal's name, formatted when the call starts: a
/// signal handler may only write them.
struct call_note {
  char head[512];  ///< "plugin directory_rsync crashed ("
  char tail[1024]; ///< ") in pull of /srv (site edge, job 7)"
  char job[24];    ///< "7\t"
  call_note* outer = nullptr;
};

thread_local call_note* current_call = nullptr;
char note_path_buf[4096] = {0};

constexpr int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

const char* signal_name(int sig) {
  switch (sig) {
  case SIGSEGV:
    return "SIGSEGV";
  case SIGBUS:
    return "SIGBUS";
  case SIGILL:
    return "SIGILL";
  case SIGFPE:
    return "SIGFPE";
  default:
    return "SIGABRT";
  }
}

void write_text(int fd, const char* text) {
  for (std::size_t left = std::strlen(text); left > 0;) {
    const ssize_t n = ::write(fd, text, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text += n;
    left -= static_cast<std::size_t>(n);
  }
}

/// Async-signal-safe: writes the prepared words, then lets the default
/// action (SA_RESETHAND restored it) end the process.
extern "C" void on_crash_signal(int sig) {
  if (const call_note* note = current_call) {
    const char* name = signal_name(sig);
    for (const char* part :
         {"satoru: ", note->head, name, note->tail,
          "; the process stops (plugins run inside it): the job is queued again by the "
          "recovery when satoru starts again\n"})
      write_text(STDERR_FILENO, part);
    const int fd = ::open(note_path_buf,
                          O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
      for (const char* part : {note->job, note->head, name, note->tail, "\n"})
        write_text(fd, part);
      ::close(fd);
    }
  }
  ::raise(sig); // pending until the handler returns; the default action then
}

void copy_into(char* out, std::size_t size, const std::string& text) {
  std::snprintf(out, size, "%s", text.c_str());
}

} // namespace

std::string plugin_crash_note_path(const std::string& database_path) {
  return database_path + ".plugin-crash";
}

void install_plugin_crash_report(const std::string& note_path) {
  static std::once_flag once;
  std::call_once(once, [&] {
    copy_into(note_path_buf, sizeof note_path_buf, note_path);
    struct sigaction sa {};
    sa.sa_handler = on_crash_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    for (int sig : crash_signals) {
      struct sigaction old {};
      if (::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_DFL &&
          !(old.sa_flags & SA_SIGINFO))
        ::sigaction(sig, &sa, nullptr);
    }
  });
}

plugin_call_scope::plugin_call_scope(std::string_view plugin, std::string_view call,
                                     std::string_view target, std::string_view site,
                                     std::int64_t job_id) {
  auto* note = new call_note{};
  copy_into(note->head, sizeof note->head, fmt::format("plugin {} crashed (", plugin));
  copy_into(note->tail, sizeof note->tail,
            fmt::format(") in {} of {} (site {}, job {})", call, target, site, job_id));
  copy_into(note->job, sizeof note->job, fmt::format("{}\t", job_id));
  note->outer = current_call;
  current_call = note;
}

plugin_call_scope::~plugin_call_scope() {
  call_note* note = current_call;
  current_call = note->outer;
  delete note;
}

void record_plugin_crashes(store& db, const std::string& note_path) {
  std::ifstream in(note_path);
  if (!in) return;
  for (std::string line; std::getline(in, line);) {
    const auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    std::int64_t job_id = std::strtoll(line.c_str(), nullptr, 10);
    if (job_id <= 0) continue;
    (void)db.add_event(job_id, "fail", "plugin", "",
                       line.substr(tab + 1) + "; the process running it stopped");
  }
  in.close();
  ::unlink(note_path.c_str());
}

} // namespace satoru
