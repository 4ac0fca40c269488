// Heartbeat: a serving worker's row in worker_heartbeat (sql/0006_worker_heartbeat.sql), which
// /_health and /metrics read to tell whether anything serves the queue.
//
// Start() spawns a thread with its own connection that upserts the row at once and then every
// FHIRBULK_WORKER_HEARTBEAT_SECONDS (fhirbulk/defaults.h): identity (worker id, host, pid,
// start time), version, threads, the units this worker's threads hold right now (from
// export_unit, so nothing in the engine has to report them) and last_seen = now(). The same
// statement deletes rows not seen for FHIRBULK_WORKER_FORGET_SECONDS (workers that died without
// saying so). Stop() (also the destructor) ends the thread and deletes the row, so a worker
// that exits gracefully stops counting at once; one that is killed counts as live until its
// row is FHIRBULK_WORKER_LIVE_SECONDS old.
//
// A database that is down costs nothing but a log line per failed beat: the thread reconnects
// at the next beat. Thread-safety: Start and Stop from one thread (the worker's Run()).

#ifndef FHIRBULK_WORKER_HEARTBEAT_H_
#define FHIRBULK_WORKER_HEARTBEAT_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "db/pg.h"
#include "fhirbulk/defaults.h"
#include "util/mutex.h"
#include "util/status.h"

namespace fhirbulk {

struct HeartbeatOptions {
  std::string conninfo;
  std::string worker_id;  // the worker's id; its threads claim units as <worker_id>-t<n>
  int threads = 0;
  int interval_seconds = FHIRBULK_WORKER_HEARTBEAT_SECONDS;
  std::function<void(const std::string&)> log;  // failures; may be empty
};

class Heartbeat {
 public:
  explicit Heartbeat(HeartbeatOptions options);
  ~Heartbeat();
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

  void Start();
  // Ends the thread, then deletes the row (a fresh connection if the thread had none).
  void Stop();

  // One beat on `conn` (exposed for tests): the upsert and the cleanup of forgotten rows.
  Status Beat(PgConnection* conn);
  // Deletes this worker's row.
  Status Remove(PgConnection* conn);

 private:
  void Loop();
  void Log(const std::string& msg) const;

  HeartbeatOptions options_;
  std::string host_;
  int pid_ = 0;
  int64_t started_at_us_ = 0;
  std::thread thread_;
  std::unique_ptr<PgConnection> conn_;  // the thread's; Stop() uses it after the join
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  bool failing_ = false;  // the thread's: log a failure once, not every beat
};

}  // namespace fhirbulk

#endif  // FHIRBULK_WORKER_HEARTBEAT_H_
