#pragma once

#include <cstddef>
#include <string>

namespace satoru {

/// The namespace of derived site UUIDs. Fixed forever: changing it would give
/// every site without a configured `uuid` a new staging folder and new
/// snapshot tags.
inline constexpr const char* site_uuid_namespace = "8d2c6f3a-4b1e-5c7d-9e0f-1a2b3c4d5e6f";

/// UUIDv5 (SHA-1, RFC 4122) of `name` in site_uuid_namespace, lowercase.
std::string derive_site_uuid(const std::string& name);

/// True for the canonical 8-4-4-4-12 hex form.
bool is_valid_uuid(const std::string& text);

/// First 16 hex digits of SHA-256(mode + '\0' + path).
std::string target_hash(const std::string& mode, const std::string& path);

/// Lowercase hex SHA-256 of bytes.
std::string sha256_hex(const std::string& bytes);

/// Lowercase hex of `len` raw bytes (a digest).
std::string lower_hex(const unsigned char* bytes, std::size_t len);

/// <staging_root>/<site_uuid>/<target_hash>
std::string staging_path(const std::string& staging_root, const std::string& site_uuid,
                         const std::string& target_hash);

} // namespace satoru
