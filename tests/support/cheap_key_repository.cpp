#include "cheap_key_repository.hpp"

#include "edge_host.hpp"

#include "satoru/identity.hpp"
#include "satoru/process.hpp"
#include "satoru/text.hpp"

#include <boost/json.hpp>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;

namespace satoru::testing {
namespace {

using bytes = std::vector<unsigned char>;

/// restic's key file format (doc/design.rst, "Keys, Encryption and MAC"):
/// scrypt(password, salt) gives 32 bytes of AES-256 key, then the 16-byte
/// `k` and 16-byte `r` of a Poly1305-AES MAC; `data` is IV || AES-256-CTR
/// ciphertext of the master key || MAC of the ciphertext.
constexpr std::size_t aes_key_size = 32;
constexpr std::size_t iv_size = 16;
constexpr std::size_t mac_size = 16;
constexpr std::size_t derived_size = aes_key_size + 32;
/// ~1 ms instead of ~500 ms; r and the salt length stay restic's.
constexpr std::int64_t cheap_n = 1024;
constexpr std::int64_t cheap_r = 8;
constexpr std::int64_t cheap_p = 1;

bytes b64_decode(const std::string& text) {
  bytes out(text.size() / 4 * 3 + 3);
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return {};
  std::size_t padding = 0;
  for (auto it = text.rbegin(); it != text.rend() && *it == '='; ++it)
    ++padding;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

std::string b64_encode(const bytes& data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(),
                          static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

bytes scrypt(const std::string& password, const bytes& salt, std::uint64_t n,
             std::uint64_t r, std::uint64_t p) {
  bytes out(derived_size);
  if (EVP_PBE_scrypt(password.data(), password.size(), salt.data(), salt.size(), n, r, p,
                     std::uint64_t{1} << 30, out.data(), out.size()) != 1)
    return {};
  return out;
}

/// AES in one mode over `in`: CTR encrypts and decrypts alike; ECB (no
/// padding) makes the Poly1305-AES nonce key.
bytes aes(const EVP_CIPHER* cipher, const unsigned char* key, const unsigned char* iv,
          const bytes& in) {
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx{
      EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free};
  bytes out(in.size() + 16);
  int len = 0;
  int tail = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), cipher, nullptr, key, iv) != 1 ||
      EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data(), &len, in.data(),
                        static_cast<int>(in.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + len, &tail) != 1)
    return {};
  out.resize(static_cast<std::size_t>(len + tail));
  return out;
}

/// restic's Poly1305-AES: the one-time key is r || AES-128_k(nonce).
bytes poly1305_aes(const bytes& derived, const bytes& nonce, const bytes& message) {
  const unsigned char* k = derived.data() + aes_key_size;
  const unsigned char* r = k + 16;
  bytes s = aes(EVP_aes_128_ecb(), k, nullptr, nonce);
  bytes key(r, r + 16);
  key.insert(key.end(), s.begin(), s.end());
  std::unique_ptr<EVP_MAC, decltype(&EVP_MAC_free)> mac{
      EVP_MAC_fetch(nullptr, "POLY1305", nullptr), EVP_MAC_free};
  if (!mac || key.size() != 32) return {};
  std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx{
      EVP_MAC_CTX_new(mac.get()), EVP_MAC_CTX_free};
  bytes out(mac_size);
  std::size_t len = 0;
  if (!ctx || EVP_MAC_init(ctx.get(), key.data(), key.size(), nullptr) != 1 ||
      EVP_MAC_update(ctx.get(), message.data(), message.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1 || len != mac_size)
    return {};
  return out;
}

bytes random_bytes(std::size_t n) {
  bytes out(n);
  if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) return {};
  return out;
}

/// The master key, decrypted from a key file with its own parameters; the
/// MAC check proves the password and this code agree with restic.
std::string open_key(const boost::json::object& key, const std::string& password,
                     bytes& master) {
  auto derived = scrypt(password, b64_decode(std::string(key.at("salt").as_string())),
                        key.at("N").to_number<std::uint64_t>(),
                        key.at("r").to_number<std::uint64_t>(),
                        key.at("p").to_number<std::uint64_t>());
  auto data = b64_decode(std::string(key.at("data").as_string()));
  if (derived.empty() || data.size() <= iv_size + mac_size) return "cannot read the key";
  bytes iv(data.begin(), data.begin() + iv_size);
  bytes ciphertext(data.begin() + iv_size, data.end() - mac_size);
  bytes tag(data.end() - mac_size, data.end());
  if (poly1305_aes(derived, iv, ciphertext) != tag)
    return "the key's MAC does not match (password, or restic's key format changed)";
  master = aes(EVP_aes_256_ctr(), derived.data(), iv.data(), ciphertext);
  return master.empty() ? "cannot decrypt the key" : "";
}

/// The same master key under cheap scrypt parameters.
std::string seal_key(boost::json::object& key, const std::string& password,
                     const bytes& master) {
  auto salt = random_bytes(b64_decode(std::string(key.at("salt").as_string())).size());
  auto iv = random_bytes(iv_size);
  auto derived = scrypt(password, salt, cheap_n, cheap_r, cheap_p);
  if (salt.empty() || iv.empty() || derived.empty()) return "cannot derive a key";
  auto ciphertext = aes(EVP_aes_256_ctr(), derived.data(), iv.data(), master);
  auto tag = poly1305_aes(derived, iv, ciphertext);
  if (ciphertext.size() != master.size() || tag.empty()) return "cannot encrypt the key";
  bytes data = iv;
  data.insert(data.end(), ciphertext.begin(), ciphertext.end());
  data.insert(data.end(), tag.begin(), tag.end());
  key["N"] = cheap_n;
  key["r"] = cheap_r;
  key["p"] = cheap_p;
  key["salt"] = b64_encode(salt);
  key["data"] = b64_encode(data);
  return "";
}

/// Replaces the only key of `repo` with the same key under cheap parameters
/// (named, like every key file, by the SHA-256 of its content).
std::string rewrite_key(const fs::path& repo, const std::string& password) {
  std::vector<fs::path> keys;
  for (const auto& e : fs::directory_iterator(repo / "keys"))
    keys.push_back(e.path());
  if (keys.size() != 1) return "expected one key in " + repo.string();
  auto key = boost::json::parse(read_file(keys[0])).as_object();
  bytes master;
  if (auto e = open_key(key, password, master); !e.empty()) return e;
  if (auto e = seal_key(key, password, master); !e.empty()) return e;
  auto text = boost::json::serialize(key);
  auto perms = fs::status(keys[0]).permissions();
  auto path = repo / "keys" / satoru::sha256_hex(text);
  {
    std::ofstream out(path, std::ios::binary);
    out << text;
    if (!out) return "cannot write " + path.string();
  }
  fs::permissions(path, perms);
  fs::remove(keys[0]);
  return "";
}

/// The template for `password`, made once per build tree; concurrent tests
/// race with rename(2), which only one of them wins.
std::string template_for(const std::string& password_file, const std::string& password,
                         fs::path& out) {
  out = fs::path(SATORU_BINARY_DIR) /
        ("test-restic-repository-" + satoru::sha256_hex(password).substr(0, 12));
  if (fs::exists(out / "config")) return "";
  fs::path made = out.string() + ".tmp." + std::to_string(::getpid());
  fs::remove_all(made);
  satoru::process_spec spec;
  spec.argv = {"restic", "init", "--quiet", "-r", made.string()};
  spec.env = {{"RESTIC_PASSWORD_FILE", password_file},
              {"RESTIC_CACHE_DIR", made.string() + "-cache"}};
  spec.timeout = std::chrono::seconds{120};
  auto r = satoru::run_process(spec);
  fs::remove_all(made.string() + "-cache");
  if (!r || !r->ok()) {
    fs::remove_all(made);
    return "restic init failed: " + (r ? r->err : r.err().message);
  }
  if (auto e = rewrite_key(made, password); !e.empty()) {
    fs::remove_all(made);
    return e;
  }
  std::error_code ec;
  fs::rename(made, out, ec);
  if (ec) fs::remove_all(made); // another test made it first
  return fs::exists(out / "config") ? "" : "no template at " + out.string();
}

} // namespace

std::string make_cheap_key_repository(const std::string& dest,
                                      const std::string& password_file) {
  const std::string password{satoru::trim(read_file(password_file))};
  fs::path from;
  if (auto e = template_for(password_file, password, from); !e.empty()) return e;
  std::error_code ec;
  fs::copy(from, dest, fs::copy_options::recursive, ec);
  return ec ? "cannot copy " + from.string() + " to " + dest + ": " + ec.message() : "";
}

} // namespace satoru::testing
