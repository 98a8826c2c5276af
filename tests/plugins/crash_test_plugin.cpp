// A plugin whose pull crashes with SIGSEGV once its option "go_file" exists,
// for the test of what an operator sees when a plugin crashes
// (integration/plugin_crash_test.cpp). Built into <build>/test-plugins and
// never installed, so no other test or the package loads it.
#include "satoru/plugin.hpp"

#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>

namespace {

class crash_test_handler final : public satoru::target_handler {
public:
  std::string name() const override { return "crash_test"; }
  std::string version() const override { return "0.0.1"; }
  std::vector<std::string> modes() const override { return {"crash_test"}; }
  std::vector<std::string> local_tools(const std::string&) const override { return {}; }
  std::vector<std::string>
  validate_options(const std::string&,
                   const boost::json::object& options) const override {
    const auto* go = options.if_contains("go_file");
    if (go && go->is_string()) return {};
    return {"go_file: required (the file whose existence makes the pull crash)"};
  }
  std::vector<satoru::check_result>
  preflight(const satoru::target_spec&, satoru::plugin_services& services) override {
    satoru::check_result c{"remote.shell", satoru::check_result::level::fail, ""};
    auto shell = services.remote();
    auto r = shell ? (*shell)->exec("true", std::chrono::seconds{30})
                   : satoru::expected<satoru::exec_result>{shell.err()};
    if (r && r->exit_status == 0) {
      c.status = satoru::check_result::level::ok;
      c.message = "ready to crash";
    } else {
      c.message = "the edge host's shell does not answer";
    }
    return {c};
  }
  satoru::pull_result pull(const satoru::target_spec& target,
                           satoru::plugin_services& services) override {
    const std::string go{target.options.at("go_file").as_string()};
    while (!std::filesystem::exists(go) && !services.cancel().cancelled())
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    if (services.cancel().cancelled()) {
      satoru::pull_result cancelled;
      cancelled.message = "cancelled before the crash";
      return cancelled;
    }
    // What a stray pointer does (a null write itself is UB the compiler may drop).
    std::raise(SIGSEGV);
    return {};
  }
};

} // namespace

SATORU_PLUGIN(crash_test_handler)
