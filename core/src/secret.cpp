#include "satoru/secret.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace satoru {
namespace {

/// Secrets are passwords and API keys; anything this large is the wrong file
/// (e.g. a backup archive given by mistake), and we should not slurp it.
constexpr off_t max_secret_file_size = 64 * 1024;

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

/// strerror() is not thread-safe; the generic category's message is.
std::string errno_text(int err) {
  return std::generic_category().message(err);
}

/// The metadata checks shared by load-time validation and resolve(): the
/// same rules, so a config that validates does not fail later for a reason
/// that could have been reported at once.
expected<void> check_file_status(const std::string& path, const struct stat& st) {
  if (!S_ISREG(st.st_mode))
    return error{errc::invalid_argument,
                 "secret file " + path + " is not a regular file"};
  if ((st.st_mode & 077) != 0) {
    const char* how = (st.st_mode & 044)   ? "readable"
                      : (st.st_mode & 022) ? "writable"
                                           : "accessible";
    return error{errc::invalid_argument, "secret file " + path + " is " + how +
                                             " by group or others (mode " +
                                             octal_mode(st.st_mode) + "); chmod 600 it"};
  }
  return {};
}

error open_error(const std::string& path, int err) {
  if (err == ENOENT) return {errc::not_found, "secret file " + path + " does not exist"};
  return {errc::io, "cannot read secret file " + path + ": " + errno_text(err)};
}

/// Closes the descriptor on every return path of read_secret_file.
struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

expected<std::string> read_secret_file(const std::string& path) {
  // Check the mode on the opened descriptor (fstat), not the path, so the
  // file we read is the file we checked.
  fd_guard file{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY)};
  if (file.fd < 0) return open_error(path, errno);
  struct stat st {};
  if (::fstat(file.fd, &st) != 0)
    return error{errc::io, "cannot stat secret file " + path + ": " + errno_text(errno)};
  if (auto ok = check_file_status(path, st); !ok) return ok.err();
  if (st.st_size > max_secret_file_size)
    return error{errc::invalid_argument,
                 "secret file " + path + " is larger than 64 KiB"};

  std::string value;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(file.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return error{errc::io,
                   "cannot read secret file " + path + ": " + errno_text(errno)};
    }
    if (n == 0) break;
    value.append(buf, static_cast<std::size_t>(n));
    if (value.size() > static_cast<std::size_t>(max_secret_file_size))
      return error{errc::invalid_argument,
                   "secret file " + path + " is larger than 64 KiB"};
  }
  // Editors add a final newline; the secret is the line, not the line break.
  if (!value.empty() && value.back() == '\n') {
    value.pop_back();
    if (!value.empty() && value.back() == '\r') value.pop_back();
  }
  if (value.empty())
    return error{errc::invalid_argument, "secret file " + path + " is empty"};
  return value;
}

} // namespace

secret_source secret_source::from_file(std::string path) {
  secret_source source;
  source.kind_ = kind::file;
  source.location_ = std::move(path);
  return source;
}

secret_source secret_source::from_env(std::string variable) {
  secret_source source;
  source.kind_ = kind::env;
  source.location_ = std::move(variable);
  return source;
}

std::string secret_source::describe() const {
  switch (kind_) {
  case kind::file:
    return "file " + location_;
  case kind::env:
    return "env " + location_;
  case kind::none:
    break;
  }
  return "none";
}

expected<std::string> secret_source::resolve() const {
  switch (kind_) {
  case kind::file:
    return read_secret_file(location_);
  case kind::env: {
    const char* value = std::getenv(location_.c_str());
    if (value == nullptr)
      return error{errc::not_found, "environment variable " + location_ + " is not set"};
    if (*value == '\0')
      return error{errc::invalid_argument,
                   "environment variable " + location_ + " is empty"};
    return std::string(value);
  }
  case kind::none:
    break;
  }
  return error{errc::invalid_argument, "no secret source configured"};
}

expected<void> secret_source::check() const {
  // Reading is the only way to know the value is not empty; the copy is
  // dropped at once and never leaves this function.
  auto value = resolve();
  if (!value) return value.err();
  return {};
}

expected<void> secret_source::check_permissions() const {
  if (kind_ != kind::file) return {};
  struct stat st {};
  if (::stat(location_.c_str(), &st) != 0) return open_error(location_, errno);
  return check_file_status(location_, st);
}

} // namespace satoru
