#include "server/status_cache.h"

namespace fhirbulk {

void StatusCache::Put(const std::string& job_id, Entry entry, int64_t read_us, int64_t ttl_us) {
  MutexLock lock(&mu_);
  if (slots_.size() >= max_entries_ && slots_.count(job_id) == 0) {
    for (auto it = slots_.begin(); it != slots_.end();) {
      it = read_us - it->second.stored_us >= it->second.ttl_us ? slots_.erase(it) : std::next(it);
    }
    if (slots_.size() >= max_entries_) slots_.clear();  // all fresh: a flood; start over
  }
  Slot& s = slots_[job_id];
  s.entry = std::make_shared<const Entry>(std::move(entry));
  s.stored_us = read_us;
  s.ttl_us = ttl_us > 0 && ttl_us < ttl_us_ ? ttl_us : ttl_us_;
  s.last_poll_us = read_us;
}

void StatusCache::Erase(const std::string& job_id) {
  MutexLock lock(&mu_);
  slots_.erase(job_id);
}

StatusCache::Hit StatusCache::Get(const std::string& job_id, const std::string& client_id,
                                  int64_t now_us, int min_poll_interval_ms,
                                  std::shared_ptr<const Entry>* entry, int* retry_after_s) {
  MutexLock lock(&mu_);
  auto it = slots_.find(job_id);
  if (it == slots_.end()) return Hit::kMiss;
  Slot& s = it->second;
  if (now_us - s.stored_us >= s.ttl_us) {
    slots_.erase(it);
    return Hit::kMiss;
  }
  if (s.entry->client_id != client_id) return Hit::kMiss;
  if (s.entry->running && min_poll_interval_ms > 0) {
    int64_t next_us = s.last_poll_us + int64_t{min_poll_interval_ms} * 1000;
    if (now_us < next_us) {
      *retry_after_s = static_cast<int>((next_us - now_us + 999999) / 1000000);
      return Hit::kThrottled;
    }
    s.last_poll_us = now_us;
  }
  *entry = s.entry;
  return Hit::kAnswer;
}

}  // namespace fhirbulk
