#pragma once

/// Checks of a local SQLite database file with the sqlite3 tool (read-only,
/// no ~/.sqliterc): what restores and restore drills prove about a database.

#include "satoru/error.hpp"

#include <string>
#include <vector>

namespace satoru {

/// `PRAGMA integrity_check` of `db`: "ok", or sqlite's complaint (or why it
/// could not run).
std::string sqlite_integrity_check(const std::string& db);

/// The names of the tables of `db` (sqlite_master), sorted.
expected<std::vector<std::string>> sqlite_tables(const std::string& db);

} // namespace satoru
