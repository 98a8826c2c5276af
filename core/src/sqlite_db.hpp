#pragma once

#include "satoru/error.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace satoru::detail {

/// A prepared statement; finalizes itself. Binds are 1-based like SQLite's.
class statement {
public:
  statement(sqlite3* db, std::string_view sql);
  ~statement();
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  bool ok() const { return stmt_ != nullptr; }
  const std::string& prepare_error() const { return prepare_error_; }

  statement& bind(int index, std::int64_t value);
  statement& bind(int index, double value);
  statement& bind(int index, int value) {
    return bind(index, static_cast<std::int64_t>(value));
  }
  statement& bind(int index, std::string_view value);
  statement& bind(int index, const std::string& value) {
    return bind(index, std::string_view{value});
  }
  statement& bind(int index, const char* value) {
    return bind(index, std::string_view{value});
  }
  statement& bind_null(int index);

  /// Steps once: SQLITE_ROW, SQLITE_DONE or an error code.
  int step();
  /// Steps until done; error if a step fails.
  expected<void> run();

  std::int64_t int64(int column) const;
  double real(int column) const;
  std::string text(int column) const;
  bool is_null(int column) const;

private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string prepare_error_;
};

/// An owned connection.
class connection {
public:
  connection() = default;
  explicit connection(sqlite3* db)
      : db_(db) {}
  ~connection();
  connection(connection&& other) noexcept
      : db_(other.db_) {
    other.db_ = nullptr;
  }
  connection& operator=(connection&& other) noexcept;

  sqlite3* get() const { return db_; }
  /// Runs one or more statements without results.
  expected<void> exec(const std::string& sql);
  error last_error(const std::string& what) const;

private:
  sqlite3* db_ = nullptr;
};

/// Runs `body` inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK when it fails).
/// IMMEDIATE takes the write lock up front, so a busy database makes us wait
/// for busy_timeout; a deferred BEGIN that later upgrades fails at once.
template <class F>
auto with_write_transaction(connection& db, F&& body) -> decltype(body()) {
  if (auto r = db.exec("BEGIN IMMEDIATE"); !r) return r.err();
  auto result = body();
  if (!result) {
    db.exec("ROLLBACK");
    return result;
  }
  if (auto r = db.exec("COMMIT"); !r) {
    db.exec("ROLLBACK");
    return r.err();
  }
  return result;
}

} // namespace satoru::detail
