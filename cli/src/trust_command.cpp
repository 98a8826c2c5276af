#include "cli_context.hpp"

#include "satoru/preflight.hpp"
#include "satoru/ssh.hpp"

#include <fmt/format.h>

#include <iostream>

namespace satoru::cli {

namespace {

struct trust_args {
  std::string site;
  bool yes = false;
  bool rotate = false;
  std::string fingerprint;
};

} // namespace

void add_trust_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto args = std::make_shared<trust_args>();
  auto cmd = app.add_subcommand(
      "trust", "show a site's SSH host key fingerprint; --yes pins it in known_hosts");
  cmd->add_option("site", args->site, "site name")->required();
  cmd->add_flag("--yes", args->yes, "write the key to the site's known_hosts file");
  cmd->add_option("--fingerprint", args->fingerprint,
                  "pin only a key with this fingerprint (SHA256:... as shown)");
  cmd->add_flag("--rotate", args->rotate,
                "replace a different pinned key (needs --fingerprint of the new key)");
  cmd->callback([&, args] {
    run = [&, args]() -> int {
      if (args->rotate && args->fingerprint.empty())
        fail(exit_usage, "trust --rotate replaces a pinned key only with --fingerprint "
                         "SHA256:... of the new key, checked on the host");
      if (!args->fingerprint.empty() && args->fingerprint.rfind("SHA256:", 0) != 0)
        fail(exit_usage, "--fingerprint must be a SHA256 fingerprint (SHA256:...), as "
                         "`satoru trust SITE` and `ssh-keygen -lf` print it");
      auto cfg = load_config_or_exit(opts);
      const auto& site = site_or_exit(cfg, args->site);
      auto endpoint = endpoint_of(site);
      // --fingerprint and --rotate say what to pin: they imply --yes.
      if (!args->yes && args->fingerprint.empty()) {
        auto key = fetch_host_key(endpoint);
        if (!key) fail(exit_failed, key.err().message);
        std::cout << fmt::format("{} presents a {} key {}\n", endpoint.display(),
                                 key->type, key->sha256_fingerprint);
        std::cout << fmt::format("Compare it with `ssh-keygen -lf "
                                 "/etc/ssh/ssh_host_{}_key.pub` on the host; if they "
                                 "match, run: satoru trust {} --yes --fingerprint {}\n",
                                 key->type == "ssh-ed25519" ? "ed25519"
                                 : key->type == "ssh-rsa"   ? "rsa"
                                                            : "ecdsa",
                                 site.name, key->sha256_fingerprint);
        return exit_ok;
      }
      trust_request request{args->fingerprint, args->rotate, "satoru trust " + site.name};
      auto key = trust_host_key(endpoint, request);
      if (!key)
        fail(key.err().code == errc::invalid_argument ? exit_usage : exit_failed,
             "site " + site.name + ": " + key.err().message);
      std::cout << fmt::format("pinned {} key {} of {} in {}\n", key->type,
                               key->sha256_fingerprint, endpoint.display(),
                               endpoint.known_hosts_file);
      return exit_ok;
    };
  });
}

} // namespace satoru::cli
