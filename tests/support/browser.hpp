#pragma once

#include "edge_host.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <string>

namespace satoru::testing {

/// A headless Chromium driven by chromedriver over the W3C WebDriver protocol
/// (plain HTTP with JSON), so a test acts as a user does: it types, clicks and
/// reads what the page shows after its scripts ran. Debian's `chromium` and
/// `chromium-driver` (installed by scripts/bootstrap) are all it needs.
class browser {
public:
  /// Starts chromedriver on a free loopback port and opens a session; files
  /// the page downloads land in download_dir().
  browser();
  ~browser();
  browser(const browser&) = delete;
  browser& operator=(const browser&) = delete;

  /// Whether a session is open; otherwise last_error() says why.
  bool ready() const { return !session_.empty(); }
  const std::string& last_error() const { return error_; }
  std::string download_dir() const { return dir_ / "downloads"; }

  /// Opens `url` and waits until the page has loaded.
  bool go(const std::string& url);
  /// The address the browser shows now.
  std::string url();
  /// The visible text of the first element matching the CSS selector ("" when
  /// there is none).
  std::string text(const std::string& css);
  /// Types `keys` into the first element matching `css`.
  bool type(const std::string& css, const std::string& keys);
  /// Clicks the first element matching `css`.
  bool click(const std::string& css);
  /// How many elements match the CSS selector.
  int count(const std::string& css);
  /// An attribute of the first element matching `css` ("" when none).
  std::string attribute(const std::string& css, const std::string& name);
  /// The value of the browser's cookie `name` for the page's site (HttpOnly
  /// ones too: WebDriver sees them), "" when none.
  std::string cookie(const std::string& name);
  /// Saves what the window shows as a PNG file.
  bool screenshot(const std::string& png_file);
  /// Waits until the text of `css` contains `part`; true if it did in time.
  bool wait_for_text(const std::string& css, const std::string& part,
                     std::chrono::milliseconds timeout);

private:
  /// One WebDriver command; the "value" member of the answer, or null with
  /// last_error() set.
  boost::json::value command(const std::string& method, const std::string& path,
                             const boost::json::value& body = nullptr);
  /// The WebDriver element id of the first match of `css` ("" when none).
  std::string element(const std::string& css);

  temp_dir dir_{"satoru-browser"};
  int port_ = 0;
  int pid_ = 0;
  std::string session_;
  std::string error_;
};

} // namespace satoru::testing
