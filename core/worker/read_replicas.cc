#include "worker/read_replicas.h"

#include <algorithm>
#include <thread>
#include <utility>

namespace fhirbulk {

namespace {

constexpr int kPollMs = 20;

std::string ServerName(PgConnection* c) {
  const char* host = PQhost(c->raw());
  const char* port = PQport(c->raw());
  return std::string("replica ") + (host != nullptr ? host : "?") + ":" +
         (port != nullptr ? port : "?");
}

}  // namespace

ReadReplicas::ReadReplicas(std::vector<std::string> conninfos, int rotation, ConnectFn connect,
                           std::function<void(const std::string&)> log, int cooldown_ms)
    : rotation_(rotation),
      connect_(std::move(connect)),
      log_(std::move(log)),
      cooldown_ms_(cooldown_ms) {
  for (std::string& ci : conninfos) {
    Replica r;
    r.conninfo = std::move(ci);
    r.name = "replica #" + std::to_string(replicas_.size() + 1);
    replicas_.push_back(std::move(r));
  }
}

void ReadReplicas::Down(Replica* r, const std::string& why) {
  r->conn.reset();
  r->down_until = Clock::now() + std::chrono::milliseconds(cooldown_ms_);
  if (log_) {
    log_(r->name + ": not used for " + std::to_string(cooldown_ms_ / 1000) + " s: " + why);
  }
}

Result<bool> ReadReplicas::CaughtUp(Replica* r, const std::string& lsn) {
  if (r->conn == nullptr || !r->conn->idle()) {
    r->conn.reset();
    auto c = connect_(r->conninfo);
    if (!c.ok()) {
      Down(r, c.status().ToString());
      return c.status();
    }
    r->conn = std::move(c).value();
    r->name = ServerName(r->conn.get());
  }
  auto q = r->conn->Exec(
      "SELECT pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", {lsn});
  if (!q.ok()) {
    Down(r, q.status().ToString());
    return q.status();
  }
  if (q->get(0, 0) != "t") {
    // A promoted standby (or a primary given as --read-db) may not hold our primary's data.
    Status s = Status::NotSupported("the server is not a standby (not in recovery)");
    Down(r, s.message());
    return s;
  }
  return q->get(0, 1) == "t";
}

Result<ReadReplicas::Picked> ReadReplicas::Pick(const std::string& lsn, int wait_ms,
                                                const std::vector<int>& exclude,
                                                const std::function<Status()>& beat) {
  Picked none;
  const int n = static_cast<int>(replicas_.size());
  if (n == 0 || lsn.empty()) {
    none.why_not = "no standby configured";
    return none;
  }
  const int start = rotation_++ % n;
  // After a wait that timed out, the next units look once and do not wait again until the
  // cooldown has passed: a standby far behind costs one wait, not one per unit.
  const bool wait = Clock::now() >= no_wait_until_;
  const auto deadline = Clock::now() + std::chrono::milliseconds(wait ? std::max(0, wait_ms) : 0);
  bool any_lagging = false;
  while (true) {
    any_lagging = false;
    const auto now = Clock::now();
    for (int k = 0; k < n; k++) {
      const int i = (start + k) % n;
      if (std::find(exclude.begin(), exclude.end(), i) != exclude.end()) continue;
      Replica& r = replicas_[static_cast<size_t>(i)];
      if (now < r.down_until) continue;
      auto up = CaughtUp(&r, lsn);
      if (!up.ok()) continue;
      if (*up) {
        Picked p;
        p.index = i;
        p.conn = r.conn.get();
        p.name = r.name;
        return p;
      }
      any_lagging = true;
    }
    if (!any_lagging || Clock::now() >= deadline) break;
    if (beat) FHIRBULK_RETURN_IF_ERROR(beat());
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
  }
  if (any_lagging && wait) {
    no_wait_until_ = Clock::now() + std::chrono::milliseconds(cooldown_ms_);
  }
  none.why_not = any_lagging ? "no standby replayed WAL up to " + lsn +
                                   (wait ? " within " + std::to_string(wait_ms) + " ms"
                                         : " (lagging: not waited for)")
                             : "no standby usable";
  return none;
}

void ReadReplicas::Failed(int index, bool broken) {
  if (index < 0 || index >= static_cast<int>(replicas_.size())) return;
  Replica& r = replicas_[static_cast<size_t>(index)];
  if (!broken && r.conn != nullptr && r.conn->healthy()) {
    // A recovery conflict cancelled the statement: the server is fine, the unit goes on
    // elsewhere (the caller excludes it for this unit); a busy connection is dropped.
    if (!r.conn->idle()) r.conn.reset();
    return;
  }
  Down(&r, "failed mid-unit");
}

void ReadReplicas::Tidy() {
  for (Replica& r : replicas_) {
    if (r.conn != nullptr && !r.conn->idle()) r.conn.reset();
  }
}

}  // namespace fhirbulk
