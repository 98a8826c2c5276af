#include "satoru/identity.hpp"

#include <gtest/gtest.h>

using namespace satoru;

// Expected values computed independently with Python:
//   uuid.uuid5(uuid.UUID("8d2c6f3a-4b1e-5c7d-9e0f-1a2b3c4d5e6f"), name)
//   hashlib.sha256(mode.encode() + b"\0" + path.encode()).hexdigest()[:16]
TEST(Identity, SiteUuidIsUuidV5OfTheName) {
  EXPECT_EQ(derive_site_uuid("demo-site"), "5390807e-36a6-557b-88ea-fde6c697393f");
  EXPECT_EQ(derive_site_uuid("site-a"), "00d6d22d-8a2c-5380-8fd7-0ec0382096cf");
  EXPECT_EQ(derive_site_uuid("site-a"), derive_site_uuid("site-a"));
}

TEST(Identity, TargetHashIsSha256OfModeNulPath) {
  EXPECT_EQ(target_hash("directory", "/srv/data"), "1792a625390c23a7");
  EXPECT_EQ(target_hash("sqlite_dump", "/var/lib/app/app.db"), "d62c3d659c620597");
  // The NUL separator keeps ("ab", "/c") and ("a", "b/c") apart.
  EXPECT_NE(target_hash("directory", "/x"), target_hash("directory/", "x"));
}

TEST(Identity, StagingPathJoinsRootSiteAndTarget) {
  EXPECT_EQ(
      staging_path("/var/lib/satoru/backups/", "5390807e-36a6-557b-88ea-fde6c697393f",
                   "1792a625390c23a7"),
      "/var/lib/satoru/backups/5390807e-36a6-557b-88ea-fde6c697393f/1792a625390c23a7");
}

TEST(Identity, ValidatesUuidText) {
  EXPECT_TRUE(is_valid_uuid("5390807e-36a6-557b-88ea-fde6c697393f"));
  EXPECT_FALSE(is_valid_uuid("5390807e36a6557b88eafde6c697393f"));
  EXPECT_FALSE(is_valid_uuid("5390807e-36a6-557b-88ea-fde6c697393g"));
  EXPECT_FALSE(is_valid_uuid(""));
}

TEST(Identity, Sha256MatchesKnownVector) {
  EXPECT_EQ(sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
