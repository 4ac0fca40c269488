// fhir-bulk worker: the export engine daemon (see worker/worker.h).

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>

#include "worker/worker.h"
#include "tools/command.h"
#include "util/flags.h"

namespace fhirbulk {

int RunWorker(int argc, char** argv) {
  std::string db;
  std::string export_dir;
  long long threads = 2;
  long long lease_seconds = 30;
  long long max_file_resources = 100000;
  long long max_file_bytes = 268435456;
  long long retention_seconds = 86400;
  long long grace_seconds = 3600;
  long long gzip_level = 1;
  long long target_unit_resources = kDefaultTargetUnitResources;
  long long target_unit_mb = kDefaultTargetUnitBytes >> 20;
  long long max_attempts = 5;
  long long janitor_interval_seconds = 30;
  long long unit_timeout_seconds = 1800;
  bool once = false;
  FlagParser flags(
      "fhir-bulk worker [--db CONNINFO] --export-dir DIR [options]",
      "Runs Bulk Data export jobs: plans accepted jobs, writes their NDJSON files into "
      "DIR/<job id>/ and removes expired ones. Any number of workers on any number of hosts "
      "may share one database and one export directory. SIGTERM or SIGINT stops it cleanly: "
      "work in progress is finished or handed back to the other workers.");
  flags.AddString("db", &db, "PostgreSQL connection string", "CONNINFO");
  flags.AddString("export-dir", &export_dir, "directory of the export files (must exist)", "DIR");
  flags.AddInt("threads", &threads, "export threads (each uses two database connections)");
  flags.AddInt("lease-seconds", &lease_seconds,
               "how long a claimed job or unit stays ours without a heartbeat", "S");
  flags.AddInt("max-file-resources", &max_file_resources, "resources per file at most");
  flags.AddInt("max-file-bytes", &max_file_bytes,
               "bytes per file at most (a larger resource "
               "gets a file of its own)");
  flags.AddInt("retention-seconds", &retention_seconds,
               "how long the files of a completed export stay (the manifest's Expires)", "S");
  flags.AddInt("grace-seconds", &grace_seconds,
               "extra time before expired files are deleted, for downloads in flight", "S");
  flags.AddInt("gzip-level", &gzip_level,
               "also write a gzip twin <file>.gz of every file, compressed at this level "
               "(1 fastest .. 9 smallest; 0: no twins), which nginx sends to clients accepting "
               "gzip",
               "N");
  flags.AddInt("target-unit-resources", &target_unit_resources,
               "rows of a type's table per work unit, roughly: smaller units spread one export "
               "over more workers and redo less after a crash, but read a table through "
               "PostgreSQL's buffer pool instead of a sequential scan (slower)");
  flags.AddInt("target-unit-mb", &target_unit_mb,
               "megabytes of a type's table (heap and TOAST) per work unit, roughly (the same "
               "trade-off)",
               "N");
  flags.AddInt("max-attempts", &max_attempts,
               "attempts per work unit (worker crashes, database outages) before its export "
               "fails with a transient OperationOutcome");
  flags.AddInt("janitor-interval-seconds", &janitor_interval_seconds,
               "how often expired, cancelled and failed exports are cleaned up", "S");
  flags.AddInt("unit-timeout-seconds", &unit_timeout_seconds,
               "a work unit's query running longer is cancelled and its export fails with an "
               "OperationOutcome naming the limit (0: no limit)",
               "S");
  flags.AddBool("once", &once, "run what is claimable now, clean up once, and exit");
  Status s = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return kExitOk;
  }
  if (!s.ok() || !flags.positionals().empty()) {
    std::fprintf(stderr, "fhir-bulk worker: %s\n",
                 s.ok() ? "unexpected argument" : s.message().c_str());
    return kExitUsage;
  }

  WorkerOptions options;
  options.conninfo = ResolveConninfo(db);
  options.export_dir = export_dir;
  options.threads = static_cast<int>(threads);
  options.lease_seconds = static_cast<int>(lease_seconds);
  options.max_file_resources = max_file_resources;
  options.max_file_bytes = max_file_bytes;
  options.retention_seconds = retention_seconds;
  options.grace_seconds = grace_seconds;
  options.target_unit_resources = target_unit_resources;
  // Clamped, not wrapped or shifted out of range: Worker::Create rejects <= 0.
  options.target_unit_bytes = std::clamp(target_unit_mb, 0LL, 1LL << 40) << 20;
  // Clamped, not wrapped: Worker::Create rejects what is out of range.
  options.max_attempts = static_cast<int>(std::clamp(max_attempts, -1LL, 1000000LL));
  options.janitor_interval_seconds =
      static_cast<int>(std::clamp(janitor_interval_seconds, -1LL, 1000000LL));
  // Out of range stays out of range (Worker::Create rejects it) instead of wrapping.
  options.gzip_level = gzip_level >= 0 && gzip_level <= 9 ? static_cast<int>(gzip_level) : -1;
  options.unit_timeout_seconds = std::clamp(unit_timeout_seconds, -1LL, 1LL << 40);
  auto worker = Worker::Create(options);
  if (!worker.ok()) {
    std::fprintf(stderr, "fhir-bulk worker: %s\n", worker.status().message().c_str());
    return kExitUsage;
  }

  // Signals go to one thread that turns them into Stop(); every other thread (created
  // after this) inherits the blocked mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  Worker* w = worker->get();
  std::thread([w, stop_signals] {
    int sig = 0;
    if (sigwait(&stop_signals, &sig) == 0) w->Stop();
  }).detach();

  if (once) {
    s = w->RunUntilIdle();
    if (s.ok()) s = w->RunJanitor();
  } else {
    s = w->Run();
  }
  if (!s.ok()) {
    std::fprintf(stderr, "fhir-bulk worker: %s\n", s.ToString().c_str());
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace fhirbulk
