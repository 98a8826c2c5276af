#pragma once

#include "satoru/store.hpp"
#include "sqlite_db.hpp"

namespace satoru {

struct store::impl {
  detail::connection db;
};

namespace detail {

/// The schema migrations, in order; migration i brings user_version to i + 1.
const std::vector<std::string>& schema_migrations();

/// Prepares a statement or returns the error from the enclosing function.
#define SATORU_PREPARE(var, db, sql)                                                     \
  ::satoru::detail::statement var{(db), (sql)};                                          \
  if (!var.ok()) return ::satoru::error{::satoru::errc::database,                        \
                                        "SQL prepare failed: " + var.prepare_error()}

} // namespace detail
} // namespace satoru
