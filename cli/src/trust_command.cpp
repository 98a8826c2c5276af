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
};

} // namespace

void add_trust_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto args = std::make_shared<trust_args>();
  auto cmd = app.add_subcommand(
      "trust", "show a site's SSH host key fingerprint; --yes pins it in known_hosts");
  cmd->add_option("site", args->site, "site name")->required();
  cmd->add_flag("--yes", args->yes, "write the key to the site's known_hosts file");
  cmd->callback([&, args] {
    run = [&, args]() -> int {
      auto cfg = load_config_or_exit(opts);
      const auto& site = site_or_exit(cfg, args->site);
      auto endpoint = endpoint_of(site);
      if (!args->yes) {
        auto key = fetch_host_key(endpoint);
        if (!key) fail(exit_failed, key.err().message);
        std::cout << fmt::format("{} presents a {} key {}\n", endpoint.display(),
                                 key->type, key->sha256_fingerprint);
        std::cout << fmt::format("Compare it with `ssh-keygen -lf "
                                 "/etc/ssh/ssh_host_{}_key.pub` on the host; if they "
                                 "match, run: satoru trust {} --yes\n",
                                 key->type == "ssh-ed25519" ? "ed25519"
                                 : key->type == "ssh-rsa"   ? "rsa"
                                                            : "ecdsa",
                                 site.name);
        return exit_ok;
      }
      auto key = trust_host_key(endpoint);
      if (!key) fail(exit_failed, key.err().message);
      std::cout << fmt::format("pinned {} key {} of {} in {}\n", key->type,
                               key->sha256_fingerprint, endpoint.display(),
                               endpoint.known_hosts_file);
      return exit_ok;
    };
  });
}

} // namespace satoru::cli
