#include "satoru/identity.hpp"

#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <openssl/evp.h>

#include <cctype>

namespace satoru {

std::string derive_site_uuid(const std::string& name) {
  boost::uuids::name_generator_sha1 gen{
      boost::uuids::string_generator{}(site_uuid_namespace)};
  return boost::uuids::to_string(gen(name));
}

bool is_valid_uuid(const std::string& text) {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !std::isxdigit(static_cast<unsigned char>(text[i])))
      return false;
  }
  return true;
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  return lower_hex(digest, len);
}

std::string lower_hex(const unsigned char* bytes, std::size_t len) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (std::size_t i = 0; i < len; ++i) {
    out.push_back(hex[bytes[i] >> 4]);
    out.push_back(hex[bytes[i] & 0xf]);
  }
  return out;
}

std::string target_hash(const std::string& mode, const std::string& path) {
  std::string input = mode;
  input.push_back('\0');
  input += path;
  return sha256_hex(input).substr(0, 16);
}

std::string staging_path(const std::string& staging_root, const std::string& site_uuid,
                         const std::string& target_hash) {
  std::string root = staging_root;
  while (root.size() > 1 && root.back() == '/')
    root.pop_back();
  return root + "/" + site_uuid + "/" + target_hash;
}

} // namespace satoru
