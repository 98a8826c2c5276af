#pragma once

#include "satoru/error.hpp"

#include <string>
#include <string_view>

namespace satoru::web {

/// scrypt cost parameters: N = 2^log_n, block size r, parallelism p.
struct scrypt_params {
  int log_n = 15;
  int r = 8;
  int p = 1;
};

/// Hashes a password with scrypt (OpenSSL) and a random 16-byte salt:
/// "$scrypt$ln=15,r=8,p=1$<salt base64>$<hash base64>".
expected<std::string> hash_password(std::string_view password,
                                    const scrypt_params& params = {});

/// Whether `password` matches an encoded hash from hash_password(). A
/// malformed hash, or one with costs outside sane bounds (a crafted users
/// file must not make a login take minutes), never matches.
bool verify_password(std::string_view password, std::string_view encoded);

/// Compares in time that depends on the lengths only, not on where the
/// first difference is.
bool constant_time_equal(std::string_view a, std::string_view b);

/// `count` bytes from OpenSSL's CSPRNG as lower-case hex.
expected<std::string> random_hex(std::size_t count);

/// SHA-256 of `text` as lower-case hex.
std::string sha256_hex(std::string_view text);

} // namespace satoru::web
