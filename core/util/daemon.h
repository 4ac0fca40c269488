// What a long-running process needs to run as a service (`fhir-bulk worker`): a log that
// can be reopened after rotation and written as text or JSON lines, a pid file, a config
// file of options, and systemd's readiness protocol without libsystemd.

#ifndef FHIRBULK_UTIL_DAEMON_H_
#define FHIRBULK_UTIL_DAEMON_H_

#include <memory>
#include <string>
#include <vector>

#include "util/mutex.h"
#include "util/status.h"

namespace fhirbulk {

enum class LogFormat { kText, kJson };

// "text" or "json"; anything else is InvalidArgument.
Result<LogFormat> ParseLogFormat(const std::string& name);

// Log lines of one program, to a file (appended, created 0640) or to stderr (path "").
//   text: "<RFC 3339 time> <program>: <message>"
//   json: {"time":"...","level":"info","program":"...","msg":"..."} (one object per line;
//         the message is JSON-escaped, so a line always parses)
// Each line is one write(2) on an O_APPEND descriptor, so lines of several threads, or of
// several processes sharing the file, never interleave.
//
// Thread-safety: every method may be called from any thread.
class LogSink {
 public:
  LogSink(std::string program, std::string path, LogFormat format);
  ~LogSink();
  LogSink(const LogSink&) = delete;
  LogSink& operator=(const LogSink&) = delete;

  // Opens the file. Until it succeeds, lines go to stderr.
  Status Open();
  // Reopens the path given (e.g. logrotate moved the file: the new one is created), with the
  // format given; path "" is stderr. On failure the old file stays in use.
  Status Reopen(const std::string& path, LogFormat format);
  // level: "info", "warn", "error".
  void Write(const char* level, const std::string& msg);
  void Info(const std::string& msg) { Write("info", msg); }
  void Error(const std::string& msg) { Write("error", msg); }

 private:
  const std::string program_;
  Mutex mu_;
  std::string path_ GUARDED_BY(mu_);
  LogFormat format_ GUARDED_BY(mu_);
  int fd_ GUARDED_BY(mu_) = -1;  // -1: stderr
};

// A pid file: written at Create (to a temporary name, then renamed, so a reader never sees
// a partial one), removed by the destructor if it still holds our pid.
class PidFile {
 public:
  static Result<std::unique_ptr<PidFile>> Create(const std::string& path);
  ~PidFile();
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

 private:
  explicit PidFile(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Reads a file of options, one per line: "name = value", "name value" or a bare "name"
// (a boolean); blank lines and lines starting with '#' are skipped; surrounding spaces and
// one pair of double quotes around the value are removed. Returns them as command-line
// arguments ("--name=value", "--name") for FlagParser, in file order.
Result<std::vector<std::string>> ReadOptionsFile(const std::string& path);

// The content of a one-value file (a connection string file, as nginx's
// fhir_bulk_pg_conninfo_file reads it): the whole file, surrounding whitespace removed.
// At most 64 KiB.
Result<std::string> ReadValueFile(const std::string& path);

// Sends `state` (e.g. "READY=1", "RELOADING=1", "STOPPING=1") to the service manager over
// the datagram socket named by $NOTIFY_SOCKET (a path, or "@name" for the abstract
// namespace). Without $NOTIFY_SOCKET (not run by systemd with Type=notify) does nothing.
Status SdNotify(const std::string& state);

}  // namespace fhirbulk

#endif  // FHIRBULK_UTIL_DAEMON_H_
