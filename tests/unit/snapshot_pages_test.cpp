// The snapshot pages without restic or sockets: paths from the browser are
// checked before anything runs, the tree of a snapshot is listed once and
// then served from memory, and hostile names stay text.
#include "satoru/host_restore.hpp"
#include "satoru/store.hpp"
#include "satoru/time.hpp"
#include "satoru/web/http_text.hpp"
#include "satoru/web/site_jobs.hpp"
#include "satoru/web/snapshot_pages.hpp"

#include "edge_host.hpp"

#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <unistd.h>

namespace {

using namespace satoru::web;
namespace http = boost::beast::http;

const std::string snapshot_id(64, 'a');

/// A body of a few bytes, already in its pipe.
class small_body : public body_source {
public:
  explicit small_body(const std::string& bytes) {
    int ends[2];
    if (::pipe(ends) != 0) return;
    read_end_ = ends[0];
    EXPECT_EQ(::write(ends[1], bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
    ::close(ends[1]);
  }
  ~small_body() override { ::close(read_end_); }
  int fd() const override { return read_end_; }
  satoru::expected<void> finish(bool) override { return {}; }

private:
  int read_end_ = -1;
};

/// All of a body, as the server would send it.
std::string small_body_text(body_source& body) {
  std::string out;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(body.fd(), buffer, sizeof buffer)) > 0)
    out.append(buffer, static_cast<std::size_t>(n));
  return out;
}

/// A repository of one snapshot, counting what the pages ask restic for.
struct fake_repository {
  int snapshots_calls = 0, ls_calls = 0, dump_calls = 0;
  std::vector<std::string> dumped;

  snapshot_source source(const satoru::site_config& site,
                         const satoru::target_config& target) {
    snapshot_source s;
    s.snapshots = [this, site, target](const satoru::config&,
                                       const std::vector<std::string>&) {
      ++snapshots_calls;
      satoru::snapshot_info info;
      info.id = snapshot_id;
      info.short_id = snapshot_id.substr(0, 8);
      info.time = "2026-11-28T03:04:05Z";
      info.hostname = "satoru";
      info.tags = satoru::snapshot_tags(site.uuid, target.hash);
      return satoru::expected<std::vector<satoru::snapshot_info>>(
          std::vector<satoru::snapshot_info>{info});
    };
    s.ls = [this](const satoru::config&, const std::string&) {
      ++ls_calls;
      auto node = [](std::string path, std::string type, std::int64_t size) {
        satoru::snapshot_node n;
        n.path = std::move(path);
        n.type = std::move(type);
        n.size = size;
        n.mode = 0644;
        return n;
      };
      return satoru::expected<std::vector<satoru::snapshot_node>>(
          std::vector<satoru::snapshot_node>{
              node("/a.txt", "file", 1), node("/sub", "dir", 0),
              node("/sub/b.txt", "file", 2), node("/sub/<script>alert(1)<", "dir", 0),
              node("/sub/<script>alert(1)</script>.txt", "file", 3),
              node("/sub/a\"quote'.txt", "file", 4), node("/sub/\xff\xfe", "file", 5),
              node("/huge.bin", "file", std::int64_t{1} << 40)});
    };
    s.dump = [this](const satoru::config&, const std::string&, const std::string& path)
        -> satoru::expected<std::shared_ptr<body_source>> {
      ++dump_calls;
      dumped.push_back(path);
      return std::shared_ptr<body_source>(
          std::make_shared<small_body>(std::string("bytes of ") + path));
    };
    return s;
  }
};

class SnapshotPages : public ::testing::Test {
protected:
  SnapshotPages() {
    satoru::site_config site;
    site.name = "store-berlin-01";
    site.uuid = "0b0e7f8e-0000-5000-8000-000000000001";
    satoru::target_config target;
    target.mode = "directory";
    target.path = "/srv/<b>data</b>";
    target.hash = "0123456789abcdef";
    site.targets.push_back(target);
    cfg_.sites.push_back(site);
    cfg_.database_path = "/nonexistent/satoru.db";
    pages_ = std::make_unique<snapshot_pages>(repo_.source(site, target));
  }

  http_response get(const std::string& target, const principal& who) {
    http_request req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1:9465");
    auto [path, query] = split_target(target);
    auto res = pages_->route(req, path, who, cfg_);
    EXPECT_TRUE(res.has_value()) << target;
    if (!res) return http_response{};
    // A download's body comes from its pipe.
    if (res->body) res->response.body() = small_body_text(*res->body);
    return res->response;
  }

  const std::string base_ = "/sites/store-berlin-01/targets/0123456789abcdef";
  const principal viewer_{"vic", role::viewer, false, "csrf-of-vic"};
  const principal operator_{"ana", role::operator_, false, "csrf-of-ana"};
  satoru::config cfg_;
  fake_repository repo_;
  std::unique_ptr<snapshot_pages> pages_;
};

TEST(SnapshotPathParameter, TakesRelativePathsAndRefusesTraversal) {
  EXPECT_EQ(*snapshot_path_parameter(""), "");
  EXPECT_EQ(*snapshot_path_parameter("etc/app.conf"), "etc/app.conf");
  EXPECT_EQ(*snapshot_path_parameter("etc/"), "etc");
  EXPECT_EQ(*snapshot_path_parameter("<script>alert(1)</script>.txt"),
            "<script>alert(1)</script>.txt");
  EXPECT_EQ(*snapshot_path_parameter("\xff\xfe"), "\xff\xfe");
  for (const std::string& bad :
       std::vector<std::string>{"/etc/passwd", "..", "../x", "a/../../b", "a/./b", "a//b",
                                ".", "a\\..\\b", std::string("a\0b", 3), "a\nb", "//"}) {
    auto r = snapshot_path_parameter(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.err().code, satoru::errc::invalid_argument);
    EXPECT_EQ(r.err().message.rfind("?path: ", 0), 0u) << r.err().message;
  }
}

TEST(AttachmentHeader, GivesASafeNameAndTheUtf8OneBeside) {
  EXPECT_EQ(attachment_header("orders.csv"), "attachment; filename=\"orders.csv\"");
  EXPECT_EQ(attachment_header("a\"quote'.txt"),
            "attachment; filename=\"a_quote_.txt\"; filename*=UTF-8''a%22quote%27.txt");
  EXPECT_EQ(attachment_header("caf\xc3\xa9.txt"),
            "attachment; filename=\"caf__.txt\"; filename*=UTF-8''caf%C3%A9.txt");
  EXPECT_EQ(attachment_header("\xff\xfe"), "attachment; filename=\"__\"");
  EXPECT_EQ(attachment_header(".."), "attachment; filename=\"download\"");
}

TEST(TreeCache, KeepsTheSnapshotsUsedLastWithinItsBounds) {
  tree_cache cache(2, 10);
  auto entry = [](std::string id, std::size_t n) {
    tree_cache::entry e;
    e.snapshot.id = std::move(id);
    e.nodes = std::make_shared<const std::vector<satoru::snapshot_node>>(n);
    return e;
  };
  cache.put(entry("a", 3));
  cache.put(entry("b", 3));
  ASSERT_TRUE(cache.find("a")); // now used last: "b" goes first
  cache.put(entry("c", 3));
  EXPECT_TRUE(cache.find("a"));
  EXPECT_FALSE(cache.find("b"));
  EXPECT_TRUE(cache.find("c"));
  cache.put(entry("d", 9)); // 9 entries: only it fits
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_TRUE(cache.find("d"));
  cache.put(entry("e", 11)); // larger than the bound: served once, not kept
  EXPECT_FALSE(cache.find("e"));
  EXPECT_TRUE(cache.find("d"));
}

TEST_F(SnapshotPages, OpeningAnotherFolderOfASnapshotRunsNoRestic) {
  auto root = get(base_ + "/snapshots/" + snapshot_id + "/tree?format=json", viewer_);
  ASSERT_EQ(root.result(), http::status::ok) << root.body();
  auto listed = boost::json::parse(root.body()).as_array();
  ASSERT_EQ(listed.size(), 3u) << root.body(); // a.txt, sub, huge.bin: one level
  EXPECT_EQ(listed.at(1).at("path"), "sub");
  EXPECT_EQ(listed.at(1).at("type"), "dir");
  EXPECT_EQ(listed.at(0).at("mode"), "0644");
  EXPECT_EQ(repo_.ls_calls, 1);
  int snapshots_before = repo_.snapshots_calls;

  auto sub = get(base_ + "/snapshots/" + snapshot_id + "/tree?path=sub", viewer_);
  ASSERT_EQ(sub.result(), http::status::ok) << sub.body();
  EXPECT_EQ(repo_.ls_calls, 1) << "the second folder came from the cache";
  EXPECT_EQ(repo_.snapshots_calls, snapshots_before) << "no restic snapshots either";
  EXPECT_NE(sub.body().find("b.txt"), std::string::npos);
}

TEST_F(SnapshotPages, HostileNamesAreText) {
  auto sub = get(base_ + "/snapshots/" + snapshot_id + "/tree?path=sub", operator_);
  ASSERT_EQ(sub.result(), http::status::ok) << sub.body();
  const auto& body = sub.body();
  EXPECT_EQ(body.find("<script>"), std::string::npos) << body;
  EXPECT_EQ(body.find("<b>data"), std::string::npos) << body;
  // A '/' cannot be in a name: "<script>alert(1)</script>.txt" is the
  // folder "<script>alert(1)<" holding "script>.txt".
  EXPECT_NE(body.find("&lt;script&gt;alert(1)&lt;/"), std::string::npos) << body;
  EXPECT_NE(body.find("a&quot;quote&#39;.txt"), std::string::npos);
  // Links carry the names percent-encoded, so any bytes come back as they were.
  EXPECT_NE(body.find("download?path=sub%2F%FF%FE"), std::string::npos) << body;
  EXPECT_NE(body.find("tree?path=sub%2F%3Cscript%3Ealert%281%29%3C"), std::string::npos);
}

TEST_F(SnapshotPages, DownloadsOnlyRegularFilesOfTheListing) {
  auto ok =
      get(base_ + "/snapshots/" + snapshot_id + "/download?path=sub%2Fb.txt", viewer_);
  ASSERT_EQ(ok.result(), http::status::ok) << ok.body();
  EXPECT_EQ(ok.body(), "bytes of /sub/b.txt");
  EXPECT_EQ(ok[http::field::content_disposition], "attachment; filename=\"b.txt\"");
  EXPECT_EQ(ok[http::field::content_type], "application/octet-stream");
  ASSERT_EQ(repo_.dump_calls, 1);

  for (std::string bad : {"..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "sub%2F..%2Fa.txt",
                          "a.txt%00", "sub%5C..%5Ca.txt", ""}) {
    auto refused =
        get(base_ + "/snapshots/" + snapshot_id + "/download?path=" + bad, viewer_);
    EXPECT_EQ(refused.result(), http::status::bad_request) << bad << refused.body();
  }
  auto missing =
      get(base_ + "/snapshots/" + snapshot_id + "/download?path=etc%2Fpasswd", viewer_);
  EXPECT_EQ(missing.result(), http::status::not_found) << missing.body();
  auto folder = get(base_ + "/snapshots/" + snapshot_id + "/download?path=sub", viewer_);
  EXPECT_EQ(folder.result(), http::status::bad_request) << folder.body();
  EXPECT_EQ(repo_.dump_calls, 1) << "restic dump ran for none of them";
  // No ceiling: a file of 1 TiB is streamed like any other, its size said first.
  auto huge =
      get(base_ + "/snapshots/" + snapshot_id + "/download?path=huge.bin", viewer_);
  EXPECT_EQ(huge.result(), http::status::ok) << huge.body();
  EXPECT_EQ(huge[http::field::content_length], std::to_string(std::int64_t{1} << 40));
  EXPECT_EQ(repo_.dump_calls, 2);
  auto other = get(base_ + "/snapshots/" + std::string(64, 'b') + "/tree", viewer_);
  EXPECT_EQ(other.result(), http::status::not_found) << other.body();
}

TEST_F(SnapshotPages, OnlyOperatorsRestoreAndOnlyWithTheirCsrfToken) {
  auto post = [&](const principal& who, const std::string& body) {
    http_request req{http::verb::post, base_ + "/restores", 11};
    req.set(http::field::host, "127.0.0.1:9465");
    req.set(http::field::content_type, "application/x-www-form-urlencoded");
    req.body() = body;
    req.prepare_payload();
    return pages_->route(req, base_ + "/restores", who, cfg_)->response;
  };
  EXPECT_EQ(post(viewer_, "csrf=csrf-of-vic&snapshot=" + snapshot_id).result(),
            http::status::forbidden);
  EXPECT_EQ(post(operator_, "csrf=wrong&snapshot=" + snapshot_id).result(),
            http::status::forbidden);
  auto traversal = post(operator_, "csrf=csrf-of-ana&path=..%2Fx");
  EXPECT_EQ(traversal.result(), http::status::bad_request) << traversal.body();
  auto viewer_tree = get(base_ + "/snapshots/" + snapshot_id + "/tree", viewer_);
  EXPECT_EQ(viewer_tree.body().find("form class=\"restore\""), std::string::npos);
  auto operator_tree = get(base_ + "/snapshots/" + snapshot_id + "/tree", operator_);
  EXPECT_NE(operator_tree.body().find("form class=\"restore\""), std::string::npos);
}

TEST_F(SnapshotPages, UnknownSitesAndTargetsAreNamed) {
  auto site = get("/api/v1/sites/nowhere/targets/0123456789abcdef/snapshots", viewer_);
  EXPECT_EQ(site.result(), http::status::not_found);
  EXPECT_NE(site.body().find("no site \\\"nowhere\\\""), std::string::npos)
      << site.body();
  auto target = get("/api/v1/sites/store-berlin-01/targets/ffff/snapshots", viewer_);
  EXPECT_EQ(target.result(), http::status::not_found);
  EXPECT_NE(target.body().find("no target with hash \\\"ffff\\\""), std::string::npos)
      << target.body();
  http_request req{http::verb::get, "/sites/store-berlin-01", 11};
  EXPECT_FALSE(pages_->route(req, "/sites/store-berlin-01", viewer_, cfg_))
      << "the site page is not one of these routes";
}

} // namespace

TEST_F(SnapshotPages, ADryRunsConfirmationIsUsedOnceAndExpiresAfterAnHour) {
  satoru::testing::temp_dir tmp{"satoru-confirm"};
  cfg_.database_path = tmp / "satoru.db";
  auto db = std::move(satoru::store::open(cfg_.database_path).value());
  ASSERT_TRUE(db.sync_config(cfg_.sites));
  const auto site = (**db.find_site("store-berlin-01")).id;
  // A dry run that ended well, as the daemon leaves it.
  auto dry_run = [&] {
    satoru::host_restore_request request;
    request.target_hash = "0123456789abcdef";
    request.snapshot_id = snapshot_id;
    auto id = db.enqueue(satoru::job_type::restore, site, request.to_json())->id;
    auto lease = **db.claim_job(id, "daemon", 60000);
    EXPECT_TRUE(*db.finish_job(lease, {satoru::job_status::success, "", {}, {}, {}}));
    return id;
  };
  std::int64_t now = satoru::now_ms();
  snapshot_pages pages{repo_.source(cfg_.sites[0], cfg_.sites[0].targets[0]),
                       [&] { return now; }};
  auto confirm = [&](std::int64_t id) {
    http_request req{http::verb::post, base_ + "/restores", 11};
    req.set(http::field::host, "127.0.0.1:9465");
    req.set(http::field::content_type, "application/x-www-form-urlencoded");
    req.body() = "csrf=csrf-of-ana&confirm=" + std::to_string(id);
    req.prepare_payload();
    return pages.route(req, base_ + "/restores", operator_, cfg_)->response;
  };
  auto applying = [&] {
    int n = 0;
    for (const auto& j : *db.list_jobs({site, std::nullopt, 100}))
      n += j.type == satoru::job_type::restore && satoru::changes_edge_host(j) ? 1 : 0;
    return n;
  };

  auto first = dry_run();
  auto used = confirm(first);
  EXPECT_EQ(used.result(), http::status::see_other) << used.body();
  auto reused = confirm(first);
  EXPECT_EQ(reused.result(), http::status::conflict) << reused.body();
  EXPECT_NE(reused.body().find("confirmed already"), std::string::npos) << reused.body();
  EXPECT_EQ(applying(), 1) << "one confirmation, one restore";
  auto applied = *db.list_jobs({site, std::nullopt, 1});
  EXPECT_EQ(applied.front().requested_by, "console:ana");

  auto old = dry_run();
  now += satoru::web::confirmation_valid_ms + 1000; // an hour and a second later
  auto expired = confirm(old);
  EXPECT_EQ(expired.result(), http::status::gone) << expired.body();
  EXPECT_EQ(applying(), 1);
  http_request req{http::verb::get, base_ + "/restores/" + std::to_string(old), 11};
  req.set(http::field::host, "127.0.0.1:9465");
  auto preview =
      pages.route(req, base_ + "/restores/" + std::to_string(old), operator_, cfg_)
          ->response;
  EXPECT_EQ(preview.result(), http::status::ok) << preview.body();
  EXPECT_EQ(preview.body().find("name=\"confirm\""), std::string::npos)
      << "no button for an expired confirmation";
}
