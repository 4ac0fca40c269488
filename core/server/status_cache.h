// StatusCache: recent answers to status polls, per process, so that a poll can be answered in
// the nginx event loop without a thread-pool hop or a database round trip.
//
// An entry is the complete answer for one job (202 + X-Progress, the 200 manifest, the failed
// OperationOutcome) with the job's owner and its export request, and lives `ttl`. Within it:
//  - only the owner gets it (anyone else falls through to the database, which answers 404);
//  - the caller's scopes are checked against the request as on the database path;
//  - for a running job, polls faster than the minimum interval get 429 here too. The interval
//    is tracked per process: with several nginx workers a client may poll each of them once
//    per interval, which still bounds the load (the database path enforces it across nodes).
// So a poll sees at most `ttl` of staleness: progress or a disabled client on another process
// or node. Entries are dated from before the database read, and a cancel is answered only
// `ttl` after its commit (Server::HandleCancel), so once the client has its answer no process
// on any node still holds the cancelled job's status.
//
// Thread-safety: all methods may be called concurrently.

#ifndef FHIRBULK_SERVER_STATUS_CACHE_H_
#define FHIRBULK_SERVER_STATUS_CACHE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "export/export_request.h"
#include "http/http.h"
#include "util/mutex.h"

namespace fhirbulk {

class StatusCache {
 public:
  struct Entry {
    std::string client_id;
    ExportRequest request;
    bool running = false;  // 202 answers, subject to the poll interval
    HttpResponse response;
  };

  StatusCache(int64_t ttl_us, size_t max_entries) : ttl_us_(ttl_us), max_entries_(max_entries) {}

  // `read_us`: when the answer's database read started; the entry expires `ttl` after it, or
  // `ttl_us` after it when 0 < ttl_us < ttl (a shorter life for answers about to change, e.g.
  // a running allowPartialManifests job whose first files are awaited).
  void Put(const std::string& job_id, Entry entry, int64_t read_us, int64_t ttl_us = 0)
      EXCLUDES(mu_);
  void Erase(const std::string& job_id) EXCLUDES(mu_);

  enum class Hit { kMiss, kAnswer, kThrottled };
  // kAnswer: *entry is the cached answer; kThrottled: *retry_after_s says how long to wait.
  Hit Get(const std::string& job_id, const std::string& client_id, int64_t now_us,
          int min_poll_interval_ms, std::shared_ptr<const Entry>* entry, int* retry_after_s)
      EXCLUDES(mu_);

 private:
  struct Slot {
    std::shared_ptr<const Entry> entry;
    int64_t stored_us = 0;
    int64_t ttl_us = 0;
    int64_t last_poll_us = 0;
  };
  const int64_t ttl_us_;
  const size_t max_entries_;
  Mutex mu_;
  std::unordered_map<std::string, Slot> slots_ GUARDED_BY(mu_);
};

}  // namespace fhirbulk

#endif  // FHIRBULK_SERVER_STATUS_CACHE_H_
