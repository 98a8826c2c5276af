#include "satoru/snapshot_record.hpp"

#include "satoru/files.hpp"
#include "satoru/identity.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>
#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

namespace satoru {

namespace fs = std::filesystem;

namespace {

std::string record_path(const std::string& staging_dir) {
  return staging_dir + ".snapshot";
}

/// One entry's line: everything whose change a snapshot would have to see.
std::string entry_line(const std::string& relative, const struct stat& st,
                       const std::string& link_target) {
  // Length-prefixed: a path may hold any byte but NUL, newlines included.
  return fmt::format(
      "{}:{} {} {} {} {} {} {} {}.{} {}.{} {}:{}\n", relative.size(), relative,
      static_cast<unsigned>(st.st_mode), static_cast<unsigned long>(st.st_ino),
      static_cast<long long>(st.st_size), static_cast<unsigned>(st.st_uid),
      static_cast<unsigned>(st.st_gid), static_cast<unsigned long>(st.st_nlink),
      static_cast<long long>(st.st_mtim.tv_sec), st.st_mtim.tv_nsec,
      static_cast<long long>(st.st_ctim.tv_sec), st.st_ctim.tv_nsec, link_target.size(),
      link_target);
}

} // namespace

expected<std::string> staging_fingerprint(const std::string& dir) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(),
                                                              &EVP_MD_CTX_free};
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    return error{errc::io, "cannot start a SHA-256 digest"};
  auto add = [&](const fs::path& path, const std::string& relative) -> expected<void> {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0)
      return error{errc::io, fmt::format("cannot stat {}: {}", path.string(),
                                         std::strerror(errno))};
    std::string target;
    if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      target = fs::read_symlink(path, ec).string();
    }
    auto line = entry_line(relative, st, target);
    EVP_DigestUpdate(ctx.get(), line.data(), line.size());
    return {};
  };
  if (auto r = add(dir, "."); !r) return r.err();
  std::error_code ec;
  fs::recursive_directory_iterator it{dir, fs::directory_options::none, ec}, end;
  if (ec) return error{errc::io, fmt::format("cannot read {}: {}", dir, ec.message())};
  for (; it != end; it.increment(ec)) {
    if (ec) return error{errc::io, fmt::format("cannot read {}: {}", dir, ec.message())};
    if (auto r = add(it->path(), it->path().lexically_relative(dir).string()); !r)
      return r.err();
  }
  if (ec) return error{errc::io, fmt::format("cannot read {}: {}", dir, ec.message())};
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  return lower_hex(digest, len);
}

std::optional<snapshot_record> read_snapshot_record(const std::string& staging_dir) {
  auto text = read_whole_file(record_path(staging_dir));
  if (!text) return std::nullopt;
  boost::system::error_code ec;
  auto value = boost::json::parse(*text, ec);
  if (ec || !value.is_object()) return std::nullopt;
  const auto& o = value.as_object();
  const auto* fingerprint = o.if_contains("fingerprint");
  const auto* id = o.if_contains("snapshot_id");
  const auto* at = o.if_contains("taken_at");
  if (!fingerprint || !fingerprint->is_string() || !id || !id->is_string() || !at ||
      !at->is_int64())
    return std::nullopt;
  snapshot_record r;
  r.fingerprint = std::string(fingerprint->as_string());
  r.snapshot_id = std::string(id->as_string());
  r.taken_at = at->as_int64();
  if (r.fingerprint.empty() || r.snapshot_id.empty()) return std::nullopt;
  return r;
}

expected<void> write_snapshot_record(const std::string& staging_dir,
                                     const snapshot_record& record) {
  boost::json::object o{{"fingerprint", record.fingerprint},
                        {"snapshot_id", record.snapshot_id},
                        {"taken_at", record.taken_at}};
  return write_file_atomically(record_path(staging_dir),
                               boost::json::serialize(o) + "\n");
}

void forget_snapshot_record(const std::string& staging_dir) {
  ::unlink(record_path(staging_dir).c_str());
}

bool local_repository_has_snapshot(const std::string& repo_path,
                                   const std::string& snapshot_id) {
  if (snapshot_id.empty()) return false;
  std::error_code ec;
  // The full id names the file; a short one is its prefix.
  if (snapshot_id.size() == 64)
    return fs::is_regular_file(repo_path + "/snapshots/" + snapshot_id, ec);
  for (fs::directory_iterator it{repo_path + "/snapshots", ec}, end; !ec && it != end;
       it.increment(ec))
    if (it->path().filename().string().rfind(snapshot_id, 0) == 0) return true;
  return false;
}

} // namespace satoru
