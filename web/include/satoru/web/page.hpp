#pragma once

#include <string>
#include <string_view>

namespace satoru::web {

/// A whole HTML document around `body` (already escaped) with the console's
/// embedded stylesheet: no CDN, no scripts, readable on a phone.
std::string page(std::string_view title, std::string_view body);

/// The login form; `message` (plain text) is shown above it when not empty.
std::string login_page(std::string_view message);

} // namespace satoru::web
