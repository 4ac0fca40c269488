#include "auth/key_ring.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/errno_text.h"
#include "util/strings.h"

namespace fhirbulk {
namespace {

constexpr size_t kMinSecret = 32;
constexpr size_t kMaxKid = 32;

bool ValidKid(std::string_view kid) {
  if (kid.empty() || kid.size() > kMaxKid) return false;
  for (char c : kid) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

}  // namespace

Result<KeyRing> KeyRing::Parse(std::string_view text) {
  KeyRing ring;
  int line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl), kWhitespace);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    line_no++;
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.find_first_of(" \t");
    std::string where = "line " + std::to_string(line_no) + ": ";
    if (sp == std::string_view::npos)
      return Status::InvalidArgument(where + "expected '<kid> <secret>'");
    std::string_view kid = line.substr(0, sp);
    std::string_view secret = Trim(line.substr(sp), kWhitespace);
    if (!ValidKid(kid)) return Status::InvalidArgument(where + "bad key id (1-32 of A-Za-z0-9_-)");
    if (secret.size() < kMinSecret || secret.find_first_of(" \t") != std::string_view::npos) {
      return Status::InvalidArgument(where +
                                     "the secret must be at least 32 characters, no blanks");
    }
    if (ring.Find(kid) != nullptr) return Status::InvalidArgument(where + "key id repeated");
    ring.keys_.emplace_back(std::string(kid), std::string(secret));
  }
  if (ring.keys_.empty()) return Status::InvalidArgument("no key");
  return ring;
}

Result<KeyRing> KeyRing::LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError(path + ": " + ErrnoText(errno));
  std::stringstream buf;
  buf << in.rdbuf();
  auto ring = Parse(buf.str());
  if (!ring.ok()) return Status::InvalidArgument(path + ": " + ring.status().message());
  return ring;
}

const std::string* KeyRing::Find(std::string_view kid) const {
  for (const auto& k : keys_) {
    if (k.first == kid) return &k.second;
  }
  return nullptr;
}

}  // namespace fhirbulk
