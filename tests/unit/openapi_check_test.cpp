// The checker the integration tests hold the API's answers against
// docs/openapi.json with: it must notice a field that drifted.
#include "openapi_check.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace {

using namespace satoru::testing;

TEST(OpenApiCheck, ReportsMissingExtraAndMistypedFields) {
  auto doc = openapi_document();
  auto schema = response_schema(doc, "/api/v1/sites/{site}/jobs", "post", 202);
  auto good = boost::json::parse(
      R"({"id": 7, "site": "berlin", "type": "backup", "existing": false})");
  EXPECT_TRUE(schema_problems(good, schema, doc).empty());

  auto missing = good;
  missing.as_object().erase("existing");
  EXPECT_EQ(schema_problems(missing, schema, doc),
            std::vector<std::string>{": misses \"existing\""});
  auto extra = good;
  extra.as_object()["owner"] = "x";
  EXPECT_EQ(
      schema_problems(extra, schema, doc),
      std::vector<std::string>{": has \"owner\", which the document does not describe"});
  auto mistyped = good;
  mistyped.as_object()["id"] = "7";
  EXPECT_EQ(schema_problems(mistyped, schema, doc),
            std::vector<std::string>{"/id: is \"7\", not of type \"integer\""});
  auto unknown_type = good;
  unknown_type.as_object()["type"] = "restore";
  EXPECT_EQ(schema_problems(unknown_type, schema, doc).size(), 1u);

  // Nested through $ref, arrays and oneOf: a site's running work.
  auto site_schema = response_schema(doc, "/api/v1/sites/{site}", "get", 200);
  auto site = boost::json::parse(R"({"name": "b", "uuid": "u", "host": "h", "port": 22,
    "user": "e", "health": "ok", "health_reason": "", "last_preflight_at": "-",
    "last_backup_at": "-", "last_success_at": "-", "last_verified_at": "-",
    "target_count": 0, "next_retry_at": "", "targets": [],
    "running": {"job_id": 1, "step": "pull", "progress": [{"type": "progress"}]}})");
  auto problems = schema_problems(site, site_schema, doc);
  ASSERT_FALSE(problems.empty());
  EXPECT_EQ(problems[0], "/running: matches 0 of the oneOf schemas, not 1");
}

} // namespace
