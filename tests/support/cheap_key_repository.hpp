#pragma once

#include <string>

namespace satoru::testing {

/// Creates an empty restic repository at `dest` (which must not exist), for
/// the password in `password_file`, whose
/// key uses cheap scrypt parameters.
///
/// Why: restic derives the key from the password with scrypt, calibrated at
/// `restic init` to about half a second of CPU, and pays it again in every
/// command that opens the repository. The suite runs over a thousand restic
/// commands, and that key derivation was more than half of all the CPU its
/// integration tests used. Everything else about the repository is what
/// `restic init` made: only the parameters that protect the password differ.
/// restic's own tests do the same.
///
/// The first call (per build tree) runs `restic init` and rewrites the key;
/// later calls copy that template. A repository copied from it shares its
/// id and master key with the other tests' ones, which is harmless: each has
/// its own cache folder. Returns "" or what went wrong.
std::string make_cheap_key_repository(const std::string& dest,
                                      const std::string& password_file);

} // namespace satoru::testing
