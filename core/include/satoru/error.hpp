#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace satoru {

/// What went wrong, in words an operator can act on. The code groups errors
/// for exit codes and metrics; the message is the whole story for humans.
enum class errc {
  ok = 0,
  invalid_argument, ///< bad input from the user or config (exit code 2)
  not_found,        ///< a named thing does not exist
  io,               ///< local filesystem or process failure
  database,         ///< SQLite failed
  ssh,              ///< connect or channel failure
  auth,             ///< the edge host refused our key or user
  host_key,         ///< unknown or changed host key
  timeout,          ///< a deadline passed
  cancelled,        ///< the caller gave up (shutdown, kill)
  remote,           ///< a remote command failed
  tool,             ///< a local tool (rsync, restic, ...) failed
  plugin,           ///< a plugin could not be loaded or misbehaved
  busy,             ///< someone else holds the resource
  integrity,        ///< data failed its integrity check
};

const char* to_string(errc code);

struct error {
  errc code = errc::ok;
  std::string message;

  error() = default;
  error(errc c, std::string msg) : code(c), message(std::move(msg)) {}
  explicit operator bool() const { return code != errc::ok; }
};

/// A value or an error. Small on purpose: C++17 has no std::expected and we
/// want errors as values across the core, actor and plugin boundaries.
template <class T>
class expected {
public:
  expected(T value) : data_(std::move(value)) {}
  expected(error err) : data_(std::move(err)) { assert(std::get<1>(data_).code != errc::ok); }

  bool has_value() const { return data_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<0>(data_); }
  const T& value() const& { return std::get<0>(data_); }
  T value() && { return std::get<0>(std::move(data_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  /// By value, so that `for (auto& x : *f())` does not dangle.
  T operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const error& err() const { return std::get<1>(data_); }

private:
  std::variant<T, error> data_;
};

template <>
class expected<void> {
public:
  expected() = default;
  expected(error err) : err_(std::move(err)) {}
  bool has_value() const { return !err_; }
  explicit operator bool() const { return has_value(); }
  const error& err() const { return err_; }

private:
  error err_;
};

} // namespace satoru
