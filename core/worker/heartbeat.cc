#include "worker/heartbeat.h"

#include <unistd.h>

#include <chrono>
#include <utility>

#include "util/fhir_time.h"
#include "util/version.h"

namespace fhirbulk {

namespace {

// One statement per beat: the upsert, and forgetting workers that died without a DELETE.
// Units in flight are the running units leased to this worker's threads ("<id>-t<n>").
constexpr const char* kBeatSql =
    "WITH gone AS ("
    "  DELETE FROM worker_heartbeat"
    "  WHERE last_seen < now() - make_interval(secs => $8) AND worker_id <> $1)"
    " INSERT INTO worker_heartbeat AS h"
    " (worker_id, host, pid, started_at, version, threads, units_in_flight, last_seen)"
    " VALUES ($1, $2, $3::int, to_timestamp($4::float8 / 1e6), $5, $6::int,"
    "  (SELECT count(*) FROM export_unit"
    "   WHERE state = 'running' AND starts_with(worker, $7)), now())"
    " ON CONFLICT (worker_id) DO UPDATE SET version = EXCLUDED.version,"
    "  threads = EXCLUDED.threads, units_in_flight = EXCLUDED.units_in_flight,"
    "  last_seen = EXCLUDED.last_seen";

}  // namespace

Heartbeat::Heartbeat(HeartbeatOptions options) : options_(std::move(options)) {
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  host_ = host;
  pid_ = static_cast<int>(::getpid());
  started_at_us_ = NowMicros();
  if (options_.interval_seconds < 1) options_.interval_seconds = 1;
}

Heartbeat::~Heartbeat() { Stop(); }

void Heartbeat::Log(const std::string& msg) const {
  if (options_.log) options_.log(msg);
}

Status Heartbeat::Beat(PgConnection* conn) {
  std::string pid = std::to_string(pid_);
  std::string started = std::to_string(started_at_us_);
  std::string threads = std::to_string(options_.threads);
  std::string prefix = options_.worker_id + "-t";
  std::string forget = std::to_string(FHIRBULK_WORKER_FORGET_SECONDS);
  auto r = conn->Exec(kBeatSql, {options_.worker_id, host_, pid, started, FHIRBULK_VERSION, threads,
                                 prefix, forget});
  return r.ok() ? Status::OK() : r.status();
}

Status Heartbeat::Remove(PgConnection* conn) {
  auto r = conn->Exec("DELETE FROM worker_heartbeat WHERE worker_id = $1", {options_.worker_id});
  return r.ok() ? Status::OK() : r.status();
}

void Heartbeat::Start() {
  if (thread_.joinable()) return;
  {
    MutexLock lock(&mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void Heartbeat::Loop() {
  auto next = std::chrono::steady_clock::now();
  while (true) {
    {
      MutexLock lock(&mu_);
      while (!stop_ && cv_.WaitUntil(&mu_, next)) {
      }
      if (stop_) return;
    }
    next = std::chrono::steady_clock::now() + std::chrono::seconds(options_.interval_seconds);
    if (conn_ == nullptr || !conn_->idle()) {
      conn_.reset();
      auto c = PgConnection::Connect(options_.conninfo);
      if (c.ok()) conn_ = std::move(c).value();
    }
    Status s = conn_ != nullptr ? Beat(conn_.get()) : Status::Unavailable("no connection");
    if (!s.ok()) {
      if (!failing_) Log("heartbeat: " + s.ToString() + "; retrying every beat");
      failing_ = true;
      conn_.reset();
    } else if (failing_) {
      Log("heartbeat: written again");
      failing_ = false;
    }
  }
}

void Heartbeat::Stop() {
  if (!thread_.joinable()) return;
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  thread_.join();
  if (conn_ == nullptr || !conn_->idle()) {
    conn_.reset();
    auto c = PgConnection::Connect(options_.conninfo);
    if (c.ok()) conn_ = std::move(c).value();
  }
  Status s = conn_ != nullptr ? Remove(conn_.get()) : Status::Unavailable("no connection");
  if (!s.ok()) Log("heartbeat: cannot delete the worker's row: " + s.ToString());
  conn_.reset();
}

}  // namespace fhirbulk
