// ReadReplicas: the PostgreSQL hot standbys one worker thread reads export units from
// (`fhir-bulk worker --read-db`, issue 17). Jobs, units, leases and files stay on the primary
// (the worker's --db); only a unit's reads (unit_runner.h) go to a standby: its COPY, and for
// a blocks or associated-data unit the questions asked before it in the same REPEATABLE READ
// READ ONLY transaction (a hot standby runs those; it refuses only SERIALIZABLE).
//
// Why the result is the primary's, exactly: a unit reads as of its job's transactionTime
// (sql/0008: current rows with last_updated <= T plus the versions replaced since), so any
// snapshot that already holds everything committed up to the job's plan gives the same rows;
// later writes change nothing it selects (a replaced version and its history row commit
// together). The planner records the primary's WAL position after its plan committed
// (export_job.read_lsn, sql/0016); a standby is used for a unit only once
// pg_last_wal_replay_lsn() >= that position, and each unit reads in one snapshot.
//
// Pick(lsn, ...) tries the standbys in a rotating order (threads spread over them), skipping
// those in cooldown: connected lazily; a server not in recovery is never used (a promoted
// standby may have left our primary's timeline). The first one whose replay position has
// reached `lsn` is returned. If none has, they are polled every kPollMs until wait_ms has
// passed (beat() runs between polls, so the unit's lease is renewed); then Pick returns none
// (index -1): the caller reads from the primary. For cooldown_ms after such a timeout, Pick
// looks once and does not wait: a lagging period costs one wait, not one per unit.
// Failed(i) handles a standby that failed mid-unit (see there).
//
// Thread-safety: one thread (a worker thread owns one ReadReplicas, like its connections).

#ifndef FHIRBULK_WORKER_READ_REPLICAS_H_
#define FHIRBULK_WORKER_READ_REPLICAS_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "db/pg.h"
#include "util/status.h"

namespace fhirbulk {

class ReadReplicas {
 public:
  // `connect` opens a connection with the worker's session settings.
  using ConnectFn = std::function<Result<std::unique_ptr<PgConnection>>(const std::string&)>;

  ReadReplicas(std::vector<std::string> conninfos, int rotation, ConnectFn connect,
               std::function<void(const std::string&)> log, int cooldown_ms = 10000);

  bool empty() const { return replicas_.empty(); }

  struct Picked {
    int index = -1;                // -1: none (read from the primary)
    PgConnection* conn = nullptr;  // valid until the next call on this object
    std::string name;              // "replica <host>:<port>"
    std::string why_not;           // index -1: why no standby was used
  };

  // See the header comment. `exclude`: standbys this unit already failed on. A non-OK Status
  // only when beat() fails (the unit must stop).
  Result<Picked> Pick(const std::string& lsn, int wait_ms, const std::vector<int>& exclude,
                      const std::function<Status()>& beat);

  // Standby `index` failed mid-unit. `broken` (connection lost, server shutting down): the
  // connection is dropped and the standby skipped for cooldown_ms. Otherwise (a recovery
  // conflict cancelled the statement on a healthy connection) it stays in use; the caller
  // redoes the unit elsewhere.
  void Failed(int index, bool broken);

  // Drops connections left busy or broken (after a unit, as the worker does with its own).
  void Tidy();

 private:
  using Clock = std::chrono::steady_clock;
  struct Replica {
    std::string conninfo;
    std::unique_ptr<PgConnection> conn;
    std::string name;
    Clock::time_point down_until{};
  };
  // 1: replayed up to lsn; 0: not yet; a Status: unusable now (cooldown set, logged).
  Result<bool> CaughtUp(Replica* r, const std::string& lsn);
  void Down(Replica* r, const std::string& why);

  std::vector<Replica> replicas_;
  int rotation_;
  ConnectFn connect_;
  std::function<void(const std::string&)> log_;
  int cooldown_ms_;
  Clock::time_point no_wait_until_{};
};

}  // namespace fhirbulk

#endif  // FHIRBULK_WORKER_READ_REPLICAS_H_
