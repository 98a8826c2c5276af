#include "browser.hpp"

#include "satoru_env.hpp"

#include <openssl/evp.h>

#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace satoru::testing {
namespace {

/// The WebDriver id key of an element reference (W3C, section 12.1).
constexpr const char* element_key = "element-6066-11e4-a52e-4f735466cecf";

boost::json::object chromium_capabilities(const std::string& profile,
                                          const std::string& downloads) {
  // As root Chromium refuses its sandbox; the test browses only pages the
  // test's own daemon serves.
  boost::json::array args{"--headless=new",
                          "--no-sandbox",
                          "--disable-gpu",
                          "--disable-dev-shm-usage",
                          "--no-first-run",
                          "--window-size=1280,900",
                          "--user-data-dir=" + profile};
  boost::json::object prefs{{"download.default_directory", downloads},
                            {"download.prompt_for_download", false}};
  boost::json::object chrome{
      {"binary", "/usr/lib/chromium/chromium"}, {"args", args}, {"prefs", prefs}};
  return {
      {"capabilities",
       {{"alwaysMatch", {{"browserName", "chrome"}, {"goog:chromeOptions", chrome}}}}}};
}

} // namespace

browser::browser() {
  if (::access("/usr/bin/chromedriver", X_OK) != 0) {
    error_ = "chromedriver is not installed (scripts/bootstrap installs chromium-driver)";
    return;
  }
  port_ = free_port();
  std::string log = dir_ / "chromedriver.log";
  std::string port_arg = "--port=" + std::to_string(port_);
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl("/usr/bin/chromedriver", "chromedriver", port_arg.c_str(),
            static_cast<char*>(nullptr));
    _exit(127);
  }
  pid_ = pid;
  if (!wait_until([&] { return command("GET", "/status").is_object(); },
                  std::chrono::seconds{20})) {
    error_ = "chromedriver did not answer: " + read_file(log);
    return;
  }
  auto value = command("POST", "/session",
                       chromium_capabilities(dir_ / "profile", download_dir()));
  if (value.is_object())
    if (auto* id = value.as_object().if_contains("sessionId"))
      session_ = boost::json::value_to<std::string>(*id);
  if (session_.empty() && error_.empty()) error_ = "no session in chromedriver's answer";
}

browser::~browser() {
  if (!session_.empty()) command("DELETE", "/session/" + session_);
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

boost::json::value browser::command(const std::string& method, const std::string& path,
                                    const boost::json::value& body) {
  std::string payload = body.is_null() ? std::string{} : boost::json::serialize(body);
  std::string request = method + " " + path +
                        " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                        "\r\nConnection: close\r\n";
  if (method == "POST")
    request += "Content-Type: application/json\r\nContent-Length: " +
               std::to_string(payload.size()) + "\r\n";
  // Starting Chromium (POST /session) can take tens of seconds on a
  // loaded machine; a command's answer is waited for as long.
  std::string raw =
      http_exchange(port_, request + "\r\n" + payload, std::chrono::seconds{90});
  auto split = raw.find("\r\n\r\n");
  if (split == std::string::npos) {
    error_ = method + " " + path + ": no answer from chromedriver";
    return nullptr;
  }
  boost::json::error_code ec;
  auto answer = boost::json::parse(raw.substr(split + 4), ec);
  if (ec || !answer.is_object() || !answer.as_object().contains("value")) {
    error_ = method + " " + path + ": " + raw.substr(split + 4);
    return nullptr;
  }
  auto& value = answer.as_object().at("value");
  if (value.is_object() && value.as_object().contains("error")) {
    error_ = method + " " + path + ": " + boost::json::serialize(value);
    return nullptr;
  }
  return value;
}

bool browser::go(const std::string& url) {
  error_.clear();
  command("POST", "/session/" + session_ + "/url", {{"url", url}});
  return error_.empty();
}

std::string browser::url() {
  auto r = command("GET", "/session/" + session_ + "/url");
  return r.is_string() ? std::string(r.as_string()) : std::string{};
}

std::string browser::element(const std::string& css) {
  auto r = command("POST", "/session/" + session_ + "/element",
                   {{"using", "css selector"}, {"value", css}});
  if (!r.is_object()) return {};
  auto* id = r.as_object().if_contains(element_key);
  return id != nullptr && id->is_string() ? std::string(id->as_string()) : std::string{};
}

std::string browser::text(const std::string& css) {
  auto id = element(css);
  if (id.empty()) return {};
  auto r = command("GET", "/session/" + session_ + "/element/" + id + "/text");
  return r.is_string() ? std::string(r.as_string()) : std::string{};
}

bool browser::type(const std::string& css, const std::string& keys) {
  auto id = element(css);
  if (id.empty()) return false;
  error_.clear();
  command("POST", "/session/" + session_ + "/element/" + id + "/value", {{"text", keys}});
  return error_.empty();
}

bool browser::click(const std::string& css) {
  auto id = element(css);
  if (id.empty()) return false;
  error_.clear();
  command("POST", "/session/" + session_ + "/element/" + id + "/click",
          boost::json::object{});
  return error_.empty();
}

int browser::count(const std::string& css) {
  auto r = command("POST", "/session/" + session_ + "/elements",
                   {{"using", "css selector"}, {"value", css}});
  return r.is_array() ? static_cast<int>(r.as_array().size()) : 0;
}

std::string browser::attribute(const std::string& css, const std::string& name) {
  auto id = element(css);
  if (id.empty()) return {};
  auto r =
      command("GET", "/session/" + session_ + "/element/" + id + "/attribute/" + name);
  return r.is_string() ? std::string(r.as_string()) : std::string{};
}

std::string browser::cookie(const std::string& name) {
  auto r = command("GET", "/session/" + session_ + "/cookie/" + name);
  if (!r.is_object()) return {};
  auto* value = r.as_object().if_contains("value");
  return value != nullptr && value->is_string() ? std::string(value->as_string())
                                                : std::string{};
}

bool browser::screenshot(const std::string& png_file) {
  auto r = command("GET", "/session/" + session_ + "/screenshot");
  if (!r.is_string()) return false;
  std::string_view text = r.as_string();
  // EVP_DecodeBlock counts the padding as zero bytes: drop them after.
  std::string png(text.size() / 4 * 3 + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(png.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) {
    error_ = "screenshot: not base64";
    return false;
  }
  std::size_t padding = 0;
  for (auto it = text.rbegin(); it != text.rend() && *it == '='; ++it)
    ++padding;
  png.resize(static_cast<std::size_t>(n) - padding);
  std::ofstream out(png_file, std::ios::binary | std::ios::trunc);
  out << png;
  return static_cast<bool>(out);
}

bool browser::wait_for_text(const std::string& css, const std::string& part,
                            std::chrono::milliseconds timeout) {
  return wait_until([&] { return contains(text(css), part); }, timeout,
                    std::chrono::milliseconds{200});
}

} // namespace satoru::testing
