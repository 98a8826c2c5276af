#include "satoru/staging_lock.hpp"

#include "edge_host.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

using namespace satoru;

TEST(StagingLock, OneHolderAtATime) {
  satoru::testing::temp_dir tmp{"satoru-lock"};
  auto staging = tmp / "site/0123456789abcdef";
  auto first = staging_lock::try_acquire(staging);
  ASSERT_TRUE(first) << first.err().message;
  auto second = staging_lock::try_acquire(staging);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.err().code, errc::busy);
  EXPECT_NE(second.err().message.find("in use by another job"), std::string::npos);
  { auto gone = std::move(*first); }
  EXPECT_TRUE(staging_lock::try_acquire(staging)) << "released with its holder";
}

TEST(StagingLock, DiesWithAKilledHolderProcess) {
  satoru::testing::temp_dir tmp{"satoru-lock"};
  auto staging = tmp / "site/0123456789abcdef";
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto held = staging_lock::try_acquire(staging);
    char c = held ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1) _exit(2);
    pause();
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  EXPECT_FALSE(staging_lock::try_acquire(staging)) << "another process holds it";
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  EXPECT_TRUE(staging_lock::try_acquire(staging)) << "the kernel dropped it";
  close(ready[0]);
  close(ready[1]);
}
