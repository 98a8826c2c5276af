#include "satoru/identity.hpp"
#include "satoru/store.hpp"
#include "satoru/web/job_events.hpp"

#include "edge_host.hpp"

#include <gtest/gtest.h>

using namespace satoru;
using satoru::testing::temp_dir;

namespace {

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1))
    ++n;
  return n;
}

} // namespace

// The job page follows this stream: a running step's progress comes as
// `event: progress` with the status line the CLI draws, once per change.
TEST(JobEventStream, SendsEachStepsProgressWhenItChangesWithTheCliStatusLine) {
  temp_dir tmp{"satoru-job-events"};
  const std::string path = tmp / "satoru.db";
  auto db = std::move(store::open(path).value());
  site_config site;
  site.name = "berlin";
  site.uuid = derive_site_uuid(site.name);
  site.host = "127.0.0.1";
  ASSERT_TRUE(db.sync_config({site}));
  auto id = db.enqueue(job_type::backup, (*db.find_site("berlin"))->id)->id;
  auto lease = **db.claim_next("me", 60000, 1);
  progress p;
  p.step = "pull";
  p.bytes_total = 4ull << 30;
  p.bytes_done = 1ull << 30;
  p.fraction = 0.25;
  ASSERT_TRUE(*db.put_progress(id, lease.epoch, "4f1c0de5", p));

  web::job_event_stream stream{path, id};
  auto first = stream.poll();
  ASSERT_TRUE(first) << first.err().message;
  EXPECT_EQ(count(first->text, "event: progress\n"), 1u) << first->text;
  EXPECT_NE(first->text.find("\"line\":\"[4f1c0de5] pull 1.0 GiB / 4.0 GiB (25%)"),
            std::string::npos)
      << first->text;
  EXPECT_FALSE(first->done);

  auto unchanged = stream.poll();
  ASSERT_TRUE(unchanged);
  EXPECT_EQ(count(unchanged->text, "event: progress\n"), 0u) << unchanged->text;

  p.bytes_done = 2ull << 30;
  p.fraction = 0.5;
  ASSERT_TRUE(*db.put_progress(id, lease.epoch, "4f1c0de5", p));
  auto moved = stream.poll();
  ASSERT_TRUE(moved);
  EXPECT_EQ(count(moved->text, "event: progress\n"), 1u) << moved->text;
  EXPECT_NE(moved->text.find("2.0 GiB / 4.0 GiB (50%)"), std::string::npos)
      << moved->text;
}

// A browser's EventSource that lost the stream reconnects with the id of
// the last event it got (Last-Event-ID); the stream goes on after it.
TEST(JobEventStream, ResumesAfterTheLastEventIdOfAReconnect) {
  temp_dir tmp{"satoru-job-events"};
  const std::string path = tmp / "satoru.db";
  auto db = std::move(store::open(path).value());
  site_config site;
  site.name = "berlin";
  site.uuid = derive_site_uuid(site.name);
  site.host = "127.0.0.1";
  ASSERT_TRUE(db.sync_config({site}));
  auto id = db.enqueue(job_type::backup, (*db.find_site("berlin"))->id)->id;
  auto first = *db.add_event(id, "info", "pull", "", "first");
  auto second = *db.add_event(id, "info", "pull", "", "second");

  web::job_event_stream fresh{path, id};
  auto all = fresh.poll();
  ASSERT_TRUE(all) << all.err().message;
  EXPECT_NE(all->text.find("id: " + std::to_string(first) + "\n"), std::string::npos)
      << all->text;

  web::job_event_stream resumed{path, id, first};
  auto rest = resumed.poll();
  ASSERT_TRUE(rest) << rest.err().message;
  EXPECT_EQ(rest->text.find("\"message\":\"first\""), std::string::npos) << rest->text;
  EXPECT_NE(rest->text.find("id: " + std::to_string(second) + "\n"), std::string::npos)
      << rest->text;
  EXPECT_EQ(count(rest->text, "event: event\n"), 1u) << "only the one after it";
}
