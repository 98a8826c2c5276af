#include "satoru/actors/runtime_host.hpp"

#include "edge_host.hpp"

#include <caf/send.hpp>
#include <gtest/gtest.h>

#include <thread>

using namespace satoru;

namespace {

bool eventually(const std::function<bool()>& ready) {
  for (int i = 0; i < 100; ++i) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return ready();
}

struct RuntimeHost : ::testing::Test {
  satoru::testing::temp_dir tmp{"satoru-runtime"};
  actors::runtime_context ctx;

  std::unique_ptr<actors::runtime_host> start() {
    auto cfg = std::make_shared<config>();
    cfg->staging_root = tmp / "staging";
    cfg->restic_repo_path = tmp / "repo";
    cfg->database_path = tmp / "satoru.db";
    ctx.cfg = cfg;
    ctx.plugins = plugin_registry::shared(tmp / "no-plugins");
    ctx.owner = make_owner_id();
    auto db = store::open(cfg->database_path);
    EXPECT_TRUE(db);
    return std::make_unique<actors::runtime_host>(
        ctx, std::make_unique<store>(std::move(*db)),
        actors::runtime_host::options{false, 0});
  }
};

} // namespace

TEST_F(RuntimeHost, ADeadSupervisorIsAFailureTheDaemonExitsOn) {
  auto host = start();
  EXPECT_FALSE(host->failure());
  caf::anon_send_exit(host->supervisor(), caf::exit_reason::kill);
  ASSERT_TRUE(eventually([&] { return host->failure().has_value(); }));
  EXPECT_NE(host->failure()->find("supervisor"), std::string::npos) << *host->failure();
}

TEST_F(RuntimeHost, AStopIsNoFailure) {
  auto host = start();
  host->stop();
  EXPECT_FALSE(host->failure());
}
