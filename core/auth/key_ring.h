// KeyRing: the server's secrets for HMAC (access tokens, signed file URLs), read from a file.
//
// File format: one key per line, "<kid> <secret>", '#' comments and blank lines ignored.
// kid: 1-32 characters [A-Za-z0-9_-]; secret: at least 32 printable characters (e.g.
// `openssl rand -hex 32`), used as the HMAC key bytes. The first key signs; every key
// verifies. Rotation: put a new key first, keep the old one until what it signed has
// expired, reload nginx. Every node that validates must have the same file.
//
// Thread-safety: immutable after Load.

#ifndef FHIRBULK_AUTH_KEY_RING_H_
#define FHIRBULK_AUTH_KEY_RING_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace fhirbulk {

class KeyRing {
 public:
  static Result<KeyRing> LoadFile(const std::string& path);
  static Result<KeyRing> Parse(std::string_view text);

  bool empty() const { return keys_.empty(); }
  const std::string& signing_kid() const { return keys_.front().first; }
  const std::string& signing_secret() const { return keys_.front().second; }
  // nullptr when there is no key with that kid.
  const std::string* Find(std::string_view kid) const;

 private:
  std::vector<std::pair<std::string, std::string>> keys_;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_AUTH_KEY_RING_H_
