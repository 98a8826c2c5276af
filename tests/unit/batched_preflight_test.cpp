#include "batched_preflight.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace satoru;
using namespace std::chrono_literals;

namespace {

/// Runs a script with the local sh and returns its stdout.
std::string run_sh(const std::string& script) {
  char path[] = "/tmp/satoru-batch-test.XXXXXX";
  int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << script;
  const std::string out_path = std::string(path) + ".out";
  EXPECT_EQ(std::system(("sh " + std::string(path) + " > " + out_path).c_str()), 0);
  std::ifstream in(out_path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  std::remove(path);
  std::remove(out_path.c_str());
  return text.str();
}

/// Plugin services whose shell counts the commands it really runs.
class counting_services final : public plugin_services {
public:
  class shell final : public remote_shell {
  public:
    expected<exec_result> exec(const std::string& command,
                               std::chrono::milliseconds) override {
      ran.push_back(command);
      return exec_result{0, "real " + command, {}};
    }
    expected<std::uint64_t> get_file(const std::string&, const std::string&,
                                     std::chrono::milliseconds) override {
      return std::uint64_t{0};
    }
    std::vector<std::string> ran;
  } shell_;
  expected<remote_shell*> remote() override {
    return static_cast<remote_shell*>(&shell_);
  }
  const ssh_endpoint& endpoint() const override { return endpoint_; }
  expected<process_result> run(process_spec) override { return process_result{}; }
  void event(const std::string&, const std::string&, const std::string&,
             const boost::json::object&) override {}
  const cancel_token& cancel() const override { return cancel_; }
  satoru::deadline target_deadline() const override { return {}; }

private:
  ssh_endpoint endpoint_;
  cancel_token cancel_;
};

} // namespace

TEST(batched_preflight, every_command_keeps_its_own_output_and_status) {
  const std::vector<recorded_command> commands{
      {"printf 'two\\nlines'", 30s},
      {"echo oops >&2; exit 3", 30s},
      {"echo ')'; exit 0\n# a comment at the end", 30s},
      {"printf '\\000\\001'", 30s},
      {"cat; echo \"stdin was empty\"", 30s},
  };
  const std::string out = run_sh(batch_script(commands));
  ASSERT_EQ(out.compare(0, 13, clean_shell_marker), 0) << out;
  auto results = parse_batch(std::string_view(out).substr(13), commands.size());
  ASSERT_TRUE(results) << out;
  ASSERT_EQ(results->size(), commands.size());
  EXPECT_EQ((*results)[0].out, "two\nlines");
  EXPECT_EQ((*results)[0].exit_status, 0);
  EXPECT_EQ((*results)[1].out, "");
  EXPECT_EQ((*results)[1].err, "oops\n");
  EXPECT_EQ((*results)[1].exit_status, 3);
  EXPECT_EQ((*results)[2].out, ")\n");
  EXPECT_EQ((*results)[3].out, std::string("\0\1", 2));
  EXPECT_EQ((*results)[4].out, "stdin was empty\n");
  // Cut short: no answers rather than wrong ones.
  EXPECT_FALSE(parse_batch(std::string_view(out).substr(13, 40), commands.size()));
}

TEST(batched_preflight, replay_answers_from_the_batch_and_runs_the_rest) {
  counting_services real;
  replaying_services replaying(
      real, {{"check a", 30s}, {"check b", 30s}},
      {exec_result{0, "batched a", {}}, exec_result{1, "", "b"}});
  auto shell = replaying.remote();
  ASSERT_TRUE(shell);
  EXPECT_EQ((*shell)->exec("check b", 30s)->err, "b");
  EXPECT_EQ((*shell)->exec("check a", 30s)->out, "batched a");
  // Asked again, or never recorded: run for real.
  EXPECT_EQ((*shell)->exec("check a", 30s)->out, "real check a");
  EXPECT_EQ((*shell)->exec("check c", 30s)->out, "real check c");
  EXPECT_EQ(replaying.unbatched(), 2);
  EXPECT_EQ(real.shell_.ran, (std::vector<std::string>{"check a", "check c"}));

  recording_services recording(real);
  auto rec = recording.remote();
  ASSERT_TRUE(rec);
  EXPECT_EQ((*rec)->exec("check d", 5s)->exit_status, 0);
  ASSERT_EQ(recording.commands().size(), 1u);
  EXPECT_EQ(recording.commands()[0].command, "check d");
  EXPECT_EQ(real.shell_.ran.size(), 2u) << "recording runs nothing";
}
