#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace satoru::web {

/// Decodes %XX escapes and '+' (as a space); nullopt on a broken escape.
std::optional<std::string> url_decode(std::string_view text);

/// Percent-encodes every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~),
/// and '/' too unless `keep_slashes`: any bytes (a file name that is not
/// UTF-8 included) become a safe part of a URL that url_decode() restores.
std::string url_encode(std::string_view text, bool keep_slashes = false);

/// "a=1&b=x+y" (a form body or a query string) as name -> value; the last
/// of repeated names wins; nullopt when an escape is broken.
std::optional<std::map<std::string, std::string>> parse_form(std::string_view text);

/// The value of cookie `name` in a Cookie header, or "".
std::string cookie_value(std::string_view header, std::string_view name);

/// Text made safe for HTML element content and quoted attribute values.
std::string html_escape(std::string_view text);

/// Whether an Origin header ("http://host:port") names the same host and
/// port as the Host header; "null" and other schemes never do.
bool same_origin(std::string_view origin, std::string_view host);

/// Splits a request target into path and query ("/a?b=1" -> "/a", "b=1").
std::pair<std::string_view, std::string_view> split_target(std::string_view target);

} // namespace satoru::web
