// DbWorker: one thread that owns a database connection and runs tasks on it in order.
//
// The loader parses and indexes on the caller's thread while this thread writes the previous
// batches, so the client's CPU work overlaps with the server's. The queue is short (a few
// batches), which bounds memory: Submit blocks while it is full.
//
// After a task fails, later tasks are dropped and Submit/Drain return that first error.
//
// Thread-safety: Submit and Drain are called by one (producer) thread.

#ifndef FHIRBULK_LOAD_DB_WORKER_H_
#define FHIRBULK_LOAD_DB_WORKER_H_

#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include "db/pg.h"
#include "util/mutex.h"

namespace fhirbulk {

class DbWorker {
 public:
  using Task = std::function<Status(PgConnection*)>;

  DbWorker(std::unique_ptr<PgConnection> conn, size_t max_queued);
  // Runs what is queued, then stops.
  ~DbWorker();
  DbWorker(const DbWorker&) = delete;
  DbWorker& operator=(const DbWorker&) = delete;

  // Queues a task, waiting while max_queued tasks are pending. Returns the error of an
  // earlier task instead of queueing, if one failed.
  Status Submit(Task task) EXCLUDES(mu_);
  // Waits until every queued task has run; returns the first error, if any.
  Status Drain() EXCLUDES(mu_);

 private:
  void Run() EXCLUDES(mu_);

  std::unique_ptr<PgConnection> conn_;  // used by the worker thread only
  const size_t max_queued_;
  Mutex mu_;
  CondVar changed_;
  std::deque<Task> queue_ GUARDED_BY(mu_);
  bool busy_ GUARDED_BY(mu_) = false;
  bool stop_ GUARDED_BY(mu_) = false;
  Status error_ GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_LOAD_DB_WORKER_H_
