#include "sqlite_db.hpp"

namespace satoru::detail {

statement::statement(sqlite3* db, std::string_view sql)
    : db_(db) {
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) !=
      SQLITE_OK) {
    prepare_error_ = sqlite3_errmsg(db);
    stmt_ = nullptr;
  }
}

statement::~statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

statement& statement::bind(int index, std::int64_t value) {
  if (stmt_) sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

statement& statement::bind(int index, double value) {
  if (stmt_) sqlite3_bind_double(stmt_, index, value);
  return *this;
}

statement& statement::bind(int index, std::string_view value) {
  if (stmt_)
    sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                      SQLITE_TRANSIENT);
  return *this;
}

statement& statement::bind_null(int index) {
  if (stmt_) sqlite3_bind_null(stmt_, index);
  return *this;
}

int statement::step() {
  if (!stmt_) return SQLITE_MISUSE;
  return sqlite3_step(stmt_);
}

expected<void> statement::run() {
  if (!stmt_) return error{errc::database, "SQL prepare failed: " + prepare_error_};
  for (;;) {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_DONE) return {};
    if (rc != SQLITE_ROW)
      return error{errc::database, std::string{"database: "} + sqlite3_errmsg(db_)};
  }
}

std::int64_t statement::int64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

double statement::real(int column) const {
  return sqlite3_column_double(stmt_, column);
}

std::string statement::text(int column) const {
  auto p = sqlite3_column_text(stmt_, column);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

bool statement::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

connection::~connection() {
  if (db_) sqlite3_close_v2(db_);
}

connection& connection::operator=(connection&& other) noexcept {
  if (this != &other) {
    if (db_) sqlite3_close_v2(db_);
    db_ = other.db_;
    other.db_ = nullptr;
  }
  return *this;
}

expected<void> connection::exec(const std::string& sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string text = msg ? msg : sqlite3_errmsg(db_);
    sqlite3_free(msg);
    return error{errc::database, "database: " + text};
  }
  return {};
}

error connection::last_error(const std::string& what) const {
  return error{errc::database, what + ": " + sqlite3_errmsg(db_)};
}

} // namespace satoru::detail
