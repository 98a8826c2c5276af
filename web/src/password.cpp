#include "satoru/web/password.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdio>
#include <vector>

namespace satoru::web {

namespace {

constexpr std::size_t salt_bytes = 16;
constexpr std::size_t hash_bytes = 32;
/// scrypt needs 128 * r * N bytes; 2^15 * 8 * 128 = 32 MiB, so allow twice that.
constexpr std::uint64_t max_memory = 256ull * 1024 * 1024;

std::string base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data,
                          static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

/// Standard base64 with padding; false on anything else.
bool unbase64(std::string_view text, std::vector<unsigned char>& out) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > 1024) return false;
  out.assign(text.size() / 4 * 3, 0);
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return false;
  std::size_t pad = 0;
  for (std::size_t i = text.size(); i > 0 && text[i - 1] == '='; --i)
    ++pad;
  if (pad > 2) return false;
  out.resize(static_cast<std::size_t>(n) - pad);
  return true;
}

bool scrypt(std::string_view password, const unsigned char* salt, std::size_t salt_size,
            const scrypt_params& params, unsigned char* out, std::size_t out_size) {
  return EVP_PBE_scrypt(
             password.data(), password.size(), salt, salt_size,
             std::uint64_t{1} << params.log_n, static_cast<std::uint64_t>(params.r),
             static_cast<std::uint64_t>(params.p), max_memory, out, out_size) == 1;
}

std::string hex(const unsigned char* data, std::size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

bool sane(const scrypt_params& p) {
  return p.log_n >= 10 && p.log_n <= 20 && p.r >= 1 && p.r <= 32 && p.p >= 1 && p.p <= 4;
}

} // namespace

expected<std::string> hash_password(std::string_view password,
                                    const scrypt_params& params) {
  if (!sane(params))
    return error{errc::invalid_argument, "scrypt parameters out of range"};
  unsigned char salt[salt_bytes];
  unsigned char hash[hash_bytes];
  if (RAND_bytes(salt, sizeof salt) != 1)
    return error{errc::io, "no random bytes from OpenSSL"};
  if (!scrypt(password, salt, sizeof salt, params, hash, sizeof hash))
    return error{errc::io, "scrypt failed (OpenSSL)"};
  std::string out = "$scrypt$ln=" + std::to_string(params.log_n) +
                    ",r=" + std::to_string(params.r) + ",p=" + std::to_string(params.p) +
                    "$" + base64(salt, sizeof salt) + "$" + base64(hash, sizeof hash);
  OPENSSL_cleanse(hash, sizeof hash);
  return out;
}

bool verify_password(std::string_view password, std::string_view encoded) {
  constexpr std::string_view prefix = "$scrypt$";
  if (encoded.substr(0, prefix.size()) != prefix) return false;
  encoded.remove_prefix(prefix.size());
  auto dollar = encoded.find('$');
  if (dollar == std::string_view::npos) return false;
  std::string params_text(encoded.substr(0, dollar));
  encoded.remove_prefix(dollar + 1);
  dollar = encoded.find('$');
  if (dollar == std::string_view::npos) return false;
  scrypt_params params;
  int consumed = 0;
  if (std::sscanf(params_text.c_str(), "ln=%d,r=%d,p=%d%n", &params.log_n, &params.r,
                  &params.p, &consumed) != 3 ||
      static_cast<std::size_t>(consumed) != params_text.size() || !sane(params))
    return false;
  std::vector<unsigned char> salt, expected_hash;
  if (!unbase64(encoded.substr(0, dollar), salt) ||
      !unbase64(encoded.substr(dollar + 1), expected_hash) || salt.size() < 8 ||
      expected_hash.size() != hash_bytes)
    return false;
  std::vector<unsigned char> actual(expected_hash.size());
  if (!scrypt(password, salt.data(), salt.size(), params, actual.data(), actual.size()))
    return false;
  bool same = CRYPTO_memcmp(actual.data(), expected_hash.data(), actual.size()) == 0;
  OPENSSL_cleanse(actual.data(), actual.size());
  return same;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

expected<std::string> random_hex(std::size_t count) {
  std::vector<unsigned char> bytes(count);
  if (RAND_bytes(bytes.data(), static_cast<int>(count)) != 1)
    return error{errc::io, "no random bytes from OpenSSL"};
  return hex(bytes.data(), bytes.size());
}

std::string sha256_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr);
  return hex(digest, size);
}

} // namespace satoru::web
