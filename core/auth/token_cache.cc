#include "auth/token_cache.h"

#include <functional>
#include <utility>

namespace fhirbulk {

AccessTokenCache::AccessTokenCache(std::shared_ptr<const KeyRing> ring, int max_lifetime_seconds,
                                   size_t max_entries)
    : ring_(std::move(ring)),
      max_lifetime_seconds_(max_lifetime_seconds),
      max_entries_(max_entries == 0 ? 1 : max_entries) {}

Result<std::shared_ptr<const Principal>> AccessTokenCache::Verify(std::string_view token,
                                                                  int64_t now) {
  const size_t hash = std::hash<std::string_view>()(token);
  {
    MutexLock lock(&mu_);
    auto it = entries_.find(hash);
    if (it != entries_.end() && it->second.token == token) {
      const Entry& e = it->second;
      // The time-dependent checks of VerifyAccessToken; the rest depends on the bytes only.
      if (e.principal->expires_at <= now) {
        entries_.erase(it);
        return Status::Unauthenticated("token expired");
      }
      if (e.issued_at > now + kAccessTokenClockSkewSeconds) {
        return Status::Unauthenticated("token issued in the future");
      }
      return e.principal;
    }
  }
  auto verified = VerifyAccessToken(*ring_, token, now, max_lifetime_seconds_);
  if (!verified.ok()) return verified.status();
  auto principal = std::make_shared<const Principal>(std::move(verified).value());
  MutexLock lock(&mu_);
  if (entries_.size() >= max_entries_ && entries_.count(hash) == 0) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      it = it->second.principal->expires_at <= now ? entries_.erase(it) : std::next(it);
    }
    if (entries_.size() >= max_entries_) entries_.clear();  // all live: a flood; start over
  }
  Entry& e = entries_[hash];
  e.token = std::string(token);
  e.issued_at = principal->issued_at;
  e.principal = principal;
  return principal;
}

size_t AccessTokenCache::size() const {
  MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace fhirbulk
