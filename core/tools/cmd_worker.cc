// fhir-bulk worker: the export engine daemon (see worker/worker.h), runnable as a systemd
// service (Type=notify): a config file of options, the connection string from a file, a log
// file reopened on SIGHUP, text or JSON log lines, a pid file, graceful SIGTERM.

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tools/command.h"
#include "util/daemon.h"
#include "util/flags.h"
#include "util/mutex.h"
#include "worker/patient_blocks.h"
#include "worker/worker.h"

namespace fhirbulk {

namespace {

constexpr char kProgram[] = "fhir-bulk worker";

// Everything the command line and the config file say.
struct WorkerConfig {
  WorkerOptions options;  // options.log is set by the caller
  std::string config_file;
  std::string log_file;  // "": stderr
  LogFormat log_format = LogFormat::kText;
  std::string pid_file;
  bool once = false;
};

enum class ParseOutcome { kOk, kHelp, kError };

// One parse of `args` (args[0] is the command name). Fills *config, or *error / *help.
ParseOutcome ParseArgs(const std::vector<std::string>& args, WorkerConfig* config,
                       std::string* text) {
  std::string config_file;
  std::string db;
  std::string db_file;
  std::string log_file;
  std::string log_format = "text";
  std::string pid_file;
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
  long long block_unit_patients = kDefaultBlockUnitPatients;
  long long max_attempts = 5;
  long long janitor_interval_seconds = 30;
  long long history_days = 90;
  long long unit_timeout_seconds = 1800;
  long long history_retention_seconds = 60;
  std::vector<std::string> read_dbs;
  long long read_db_wait_ms = 5000;
  long long cohort_timeout_ms = FHIRBULK_DEFAULT_COHORT_TIMEOUT_MS;
  long long cohort_max_members = FHIRBULK_DEFAULT_GROUP_MAX_MEMBERS;
  bool once = false;
  FlagParser flags(
      "fhir-bulk worker [--config FILE] [--db CONNINFO | --db-file FILE] --export-dir DIR "
      "[options]",
      "Runs Bulk Data export jobs: plans accepted jobs, writes their NDJSON files into "
      "DIR/<job id>/ and removes expired ones. Any number of workers on any number of hosts "
      "may share one database and one export directory. SIGTERM or SIGINT stops it cleanly: "
      "work in progress is finished or handed back to the other workers. SIGHUP reopens the "
      "log file and rereads the config file and the connection file: log options apply at "
      "once, other changes restart the export engine in place. Under systemd (Type=notify) it "
      "reports readiness through $NOTIFY_SOCKET.");
  flags.AddString("config", &config_file,
                  "read options from FILE first, one per line: name = value (the option names "
                  "without \"--\"; '#' starts a comment); the command line wins",
                  "FILE");
  flags.AddString("db", &db, "PostgreSQL connection string", "CONNINFO");
  flags.AddString("db-file", &db_file,
                  "read the connection string from FILE (its whole content, as nginx's "
                  "fhir_bulk_pg_conninfo_file): keeps a password off the command line",
                  "FILE");
  flags.AddString("export-dir", &export_dir, "directory of the export files (must exist)", "DIR");
  flags.AddString("log-file", &log_file,
                  "append log lines to FILE (created 0640) instead of stderr; reopened on SIGHUP",
                  "FILE");
  flags.AddString("log-format", &log_format,
                  "text (\"<time> fhir-bulk worker: <message>\") or json (one object per line: "
                  "time, level, program, msg)",
                  "FORMAT");
  flags.AddString("pid-file", &pid_file, "write the process id to FILE, removed at exit", "FILE");
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
  flags.AddInt("block-unit-patients", &block_unit_patients,
               "organizeOutputBy=Patient: patients per work unit (units share an export)");
  flags.AddInt("target-unit-mb", &target_unit_mb,
               "megabytes of a type's table (heap and TOAST) per work unit, roughly (the same "
               "trade-off)",
               "N");
  flags.AddInt("max-attempts", &max_attempts,
               "attempts per work unit (worker crashes, database outages) before its export "
               "fails with a transient OperationOutcome");
  flags.AddInt("janitor-interval-seconds", &janitor_interval_seconds,
               "how often expired, cancelled and failed exports are cleaned up", "S");
  flags.AddInt("history-days", &history_days,
               "keep the history of finished, failed and cancelled exports (who, what, counts, "
               "bytes, duration, outcome) this many days after they end; 0: forever",
               "N");
  flags.AddInt("unit-timeout-seconds", &unit_timeout_seconds,
               "a work unit's query running longer is cancelled and its export fails with an "
               "OperationOutcome naming the limit (0: no limit)",
               "S");
  flags.AddInt("cohort-timeout-ms", &cohort_timeout_ms,
               "a criteria-based Group's evaluation running longer is cancelled and refused "
               "(400 too-costly naming the limit)",
               "MS");
  flags.AddInt("cohort-max-members", &cohort_max_members,
               "a criteria-based Group with more members is refused (400 too-costly)", "N");
  flags.AddInt("history-retention-seconds", &history_retention_seconds,
               "keep resource versions replaced by writes at least this long (exports in "
               "progress or kept keep theirs regardless: they read as of transactionTime)",
               "S");
  flags.AddRepeated("read-db", &read_dbs,
                    "a hot standby of --db (streaming replication) to read export units from; "
                    "repeatable, or one libpq multi-host string with "
                    "target_session_attrs=standby. Jobs, leases and files stay on --db; a unit "
                    "reads from a standby only once it replayed the job's plan, else from "
                    "another standby or --db",
                    "CONNINFO");
  flags.AddInt("read-db-wait-ms", &read_db_wait_ms,
               "how long a unit waits for a lagging standby before it reads elsewhere", "MS");
  flags.AddBool("once", &once, "run what is claimable now, clean up once, and exit");

  std::vector<char*> argv;
  argv.reserve(args.size());
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  Status s = flags.Parse(static_cast<int>(argv.size()), argv.data());
  if (flags.help_requested()) {
    *text = flags.Help();
    return ParseOutcome::kHelp;
  }
  if (s.ok() && !flags.positionals().empty()) s = Status::InvalidArgument("unexpected argument");
  if (s.ok() && !db.empty() && !db_file.empty()) {
    s = Status::InvalidArgument("--db and --db-file exclude each other");
  }
  Result<LogFormat> format = ParseLogFormat(log_format);
  if (s.ok() && !format.ok()) s = format.status();
  std::string conninfo = ResolveConninfo(db);
  if (s.ok() && !db_file.empty()) {
    Result<std::string> value = ReadValueFile(db_file);
    if (value.ok()) {
      conninfo = *value;
    } else {
      s = value.status();
    }
  }
  if (!s.ok()) {
    *text = s.message();
    return ParseOutcome::kError;
  }

  config->config_file = config_file;
  config->log_file = log_file;
  config->log_format = *format;
  config->pid_file = pid_file;
  config->once = once;
  WorkerOptions& options = config->options;
  options.conninfo = conninfo;
  options.read_conninfos = read_dbs;
  options.replica_wait_ms = static_cast<int>(std::clamp(read_db_wait_ms, -1LL, 3600000LL));
  options.export_dir = export_dir;
  options.threads = static_cast<int>(std::clamp(threads, -1LL, 1000000LL));
  options.lease_seconds = static_cast<int>(std::clamp(lease_seconds, -1LL, 1000000LL));
  options.max_file_resources = max_file_resources;
  options.max_file_bytes = max_file_bytes;
  options.retention_seconds = retention_seconds;
  options.grace_seconds = grace_seconds;
  options.target_unit_resources = target_unit_resources;
  options.block_unit_patients = std::clamp(block_unit_patients, 1LL, 1LL << 40);
  // Clamped, not wrapped or shifted out of range: Worker::Create rejects <= 0.
  options.target_unit_bytes = std::clamp(target_unit_mb, 0LL, 1LL << 40) << 20;
  // Clamped, not wrapped: Worker::Create rejects what is out of range.
  options.max_attempts = static_cast<int>(std::clamp(max_attempts, -1LL, 1000000LL));
  options.janitor_interval_seconds =
      static_cast<int>(std::clamp(janitor_interval_seconds, -1LL, 1000000LL));
  options.history_days = static_cast<int>(std::clamp(history_days, -1LL, 1000000LL));
  // Out of range stays out of range (Worker::Create rejects it) instead of wrapping.
  options.gzip_level = gzip_level >= 0 && gzip_level <= 9 ? static_cast<int>(gzip_level) : -1;
  options.unit_timeout_seconds = std::clamp(unit_timeout_seconds, -1LL, 1LL << 40);
  options.history_retention_seconds = std::clamp(history_retention_seconds, -1LL, 1LL << 40);
  options.cohort_timeout_ms = std::clamp(cohort_timeout_ms, 1LL, 1LL << 30);
  options.cohort_max_members = std::clamp(cohort_max_members, 1LL, 1LL << 30);
  return ParseOutcome::kOk;
}

// The command line, preceded by the options of its --config file (read again at each call,
// so that SIGHUP sees the file's current content).
ParseOutcome ParseConfig(const std::vector<std::string>& command_line, WorkerConfig* config,
                         std::string* text) {
  WorkerConfig first;
  ParseOutcome outcome = ParseArgs(command_line, &first, text);
  if (outcome != ParseOutcome::kOk || first.config_file.empty()) {
    *config = first;
    return outcome;
  }
  Result<std::vector<std::string>> file_args = ReadOptionsFile(first.config_file);
  if (!file_args.ok()) {
    *text = file_args.status().message();
    return ParseOutcome::kError;
  }
  std::vector<std::string> args = {command_line[0]};
  for (const std::string& a : *file_args) {
    if (a == "--config" || a.rfind("--config=", 0) == 0) {
      *text = first.config_file + ": 'config' cannot be set in a config file";
      return ParseOutcome::kError;
    }
    args.push_back(a);
  }
  args.insert(args.end(), command_line.begin() + 1, command_line.end());
  return ParseArgs(args, config, text);
}

// What the export engine was created with: a change restarts it (log options do not).
bool SameEngine(const WorkerOptions& a, const WorkerOptions& b) {
  return a.conninfo == b.conninfo && a.export_dir == b.export_dir && a.threads == b.threads &&
         a.lease_seconds == b.lease_seconds && a.max_file_resources == b.max_file_resources &&
         a.max_file_bytes == b.max_file_bytes && a.retention_seconds == b.retention_seconds &&
         a.grace_seconds == b.grace_seconds &&
         a.janitor_interval_seconds == b.janitor_interval_seconds &&
         a.history_days == b.history_days && a.max_attempts == b.max_attempts &&
         a.target_unit_resources == b.target_unit_resources &&
         a.target_unit_bytes == b.target_unit_bytes &&
         a.block_unit_patients == b.block_unit_patients &&
         a.unit_timeout_seconds == b.unit_timeout_seconds && a.gzip_level == b.gzip_level &&
         a.history_retention_seconds == b.history_retention_seconds &&
         a.read_conninfos == b.read_conninfos && a.replica_wait_ms == b.replica_wait_ms &&
         a.cohort_timeout_ms == b.cohort_timeout_ms && a.cohort_max_members == b.cohort_max_members;
}

// Shared between the main thread (which runs the engine) and the signal thread.
struct Control {
  Mutex mu;
  Worker* current GUARDED_BY(mu) = nullptr;  // the engine running now, if any
  bool stop GUARDED_BY(mu) = false;          // SIGTERM/SIGINT seen: no new engine
  bool restart GUARDED_BY(mu) = false;       // SIGHUP changed the engine's options: next holds them
  WorkerConfig next GUARDED_BY(mu);
  bool quit GUARDED_BY(mu) = false;  // the main thread is done: the signal thread ends
};

void Notify(LogSink* log, const std::string& state) {
  Status s = SdNotify(state);
  if (!s.ok()) log->Error(s.ToString());
}

// The signal thread: SIGHUP reloads, SIGTERM/SIGINT stop, anything after `quit` ends it.
void HandleSignals(const sigset_t& signals, const std::vector<std::string>& command_line,
                   Control* control, LogSink* log, WorkerConfig running) {
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    control->mu.Lock();
    if (control->quit) {
      control->mu.Unlock();
      return;
    }
    if (sig != SIGHUP) {
      control->stop = true;
      if (control->current != nullptr) control->current->Stop();
      control->mu.Unlock();
      log->Info(std::string("stopping on ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT"));
      Notify(log, "STOPPING=1");
      continue;
    }
    control->mu.Unlock();
    Notify(log, "RELOADING=1");
    WorkerConfig config;
    std::string error;
    if (ParseConfig(command_line, &config, &error) != ParseOutcome::kOk) {
      log->Error("SIGHUP: configuration not changed: " + error);
      Notify(log, "READY=1");
      continue;
    }
    Status s = log->Reopen(config.log_file, config.log_format);
    if (!s.ok()) log->Error("SIGHUP: log not reopened: " + s.ToString());
    bool restart = !SameEngine(config.options, running.options) || config.once != running.once;
    log->Info(std::string("SIGHUP: log reopened, configuration reread") +
              (restart ? "; restarting the export engine with the new options" : ""));
    if (restart) {
      MutexLock lock(&control->mu);
      control->next = config;
      control->restart = true;
      if (control->current != nullptr) control->current->Stop();
      running = config;
    }
    Notify(log, "READY=1");
  }
}

}  // namespace

int RunWorker(int argc, char** argv) {
  // Signals go to one thread (HandleSignals); every other thread, created after this,
  // inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const std::vector<std::string> command_line(argv, argv + argc);
  WorkerConfig config;
  std::string text;
  switch (ParseConfig(command_line, &config, &text)) {
    case ParseOutcome::kHelp:
      std::fputs(text.c_str(), stdout);
      return kExitOk;
    case ParseOutcome::kError:
      std::fprintf(stderr, "%s: %s\n", kProgram, text.c_str());
      return kExitUsage;
    case ParseOutcome::kOk:
      break;
  }

  LogSink log(kProgram, config.log_file, config.log_format);
  Status s = log.Open();
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", kProgram, s.ToString().c_str());
    return kExitFailure;
  }
  std::unique_ptr<PidFile> pid_file;
  if (!config.pid_file.empty()) {
    auto created = PidFile::Create(config.pid_file);
    if (!created.ok()) {
      log.Error(created.status().ToString());
      return kExitFailure;
    }
    pid_file = std::move(created).value();
  }

  Control control;
  std::thread signal_thread(HandleSignals, signals, command_line, &control, &log, config);
  int exit_code = kExitOk;
  bool ready_sent = false;
  WorkerConfig good = config;  // the last configuration an engine was created with
  auto with_log = [&log](WorkerOptions options) {
    options.log = [&log](const std::string& msg) { log.Info(msg); };
    return options;
  };
  for (;;) {
    auto worker = Worker::Create(with_log(config.options));
    if (!worker.ok() && ready_sent) {
      // A reload with options the engine refuses: carry on with the previous ones.
      log.Error("SIGHUP: " + worker.status().message() + "; keeping the previous options");
      config = good;
      worker = Worker::Create(with_log(config.options));
    }
    if (!worker.ok()) {
      log.Error(worker.status().message());
      exit_code = kExitUsage;
      break;
    }
    good = config;
    Worker* w = worker->get();
    {
      MutexLock lock(&control.mu);
      if (control.stop) break;
      control.current = w;
    }
    if (!ready_sent) {
      Notify(&log, "READY=1");
      ready_sent = true;
    }
    if (config.once) {
      s = w->RunUntilIdle();
      if (s.ok()) s = w->RunJanitor();
    } else {
      s = w->Run();
    }
    bool restart;
    {
      MutexLock lock(&control.mu);
      control.current = nullptr;
      restart = control.restart && !control.stop;
      control.restart = false;
      if (restart) config = control.next;
    }
    if (!s.ok()) {
      log.Error(s.ToString());
      exit_code = kExitFailure;
      break;
    }
    if (!restart || config.once) break;
  }

  {
    MutexLock lock(&control.mu);
    control.quit = true;
  }
  // sigwait returns a signal directed at its thread as well: this wakes it to see `quit`
  // (any signal of the set does; SIGHUP, because SIGTERM reads as "terminate the thread").
  pthread_kill(signal_thread.native_handle(), SIGHUP);
  signal_thread.join();
  return exit_code;
}

}  // namespace fhirbulk
