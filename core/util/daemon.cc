#include "util/daemon.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "util/errno_text.h"
#include "util/fhir_time.h"
#include "util/strings.h"

namespace fhirbulk {

namespace {

std::string Errno(const std::string& what) { return what + ": " + ErrnoText(errno); }

void AppendJsonString(std::string* out, const std::string& s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          *out += buf;
        } else {
          // Bytes >= 0x80 are copied: the worker's messages are escaped to ASCII before they
          // get here (util/log_escape.h), so this is never invalid UTF-8 in practice.
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

bool WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(Errno("cannot open " + path));
  std::string data;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Status::IOError(Errno("cannot read " + path));
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > max_bytes) {
      ::close(fd);
      return Status::InvalidArgument(path + " is larger than " + std::to_string(max_bytes) +
                                     " bytes");
    }
  }
  ::close(fd);
  return data;
}

}  // namespace

Result<LogFormat> ParseLogFormat(const std::string& name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return Status::InvalidArgument("--log-format must be text or json, not '" + name + "'");
}

LogSink::LogSink(std::string program, std::string path, LogFormat format)
    : program_(std::move(program)), path_(std::move(path)), format_(format) {}

LogSink::~LogSink() {
  if (fd_ >= 0) ::close(fd_);
}

Status LogSink::Open() {
  std::string path;
  LogFormat format;
  {
    MutexLock lock(&mu_);
    path = path_;
    format = format_;
  }
  return Reopen(path, format);
}

Status LogSink::Reopen(const std::string& path, LogFormat format) {
  int fd = -1;
  if (!path.empty()) {
    // 0640: the log may name jobs, clients and files (the umask may narrow it further).
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0) return Status::IOError(Errno("cannot open log file " + path));
  }
  MutexLock lock(&mu_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  path_ = path;
  format_ = format;
  return Status::OK();
}

void LogSink::Write(const char* level, const std::string& msg) {
  std::string time = FormatInstant(NowMicros());
  MutexLock lock(&mu_);
  std::string line;
  if (format_ == LogFormat::kJson) {
    line = "{\"time\":";
    AppendJsonString(&line, time);
    line += ",\"level\":";
    AppendJsonString(&line, level);
    line += ",\"program\":";
    AppendJsonString(&line, program_);
    line += ",\"msg\":";
    AppendJsonString(&line, msg);
    line += "}\n";
  } else {
    line = time + " " + program_ + ": ";
    if (std::strcmp(level, "info") != 0) line += std::string(level) + ": ";
    line += msg + "\n";
  }
  // Nowhere to report a failed log write; stderr is the fallback for a file that fails.
  if (!WriteAll(fd_ >= 0 ? fd_ : STDERR_FILENO, line) && fd_ >= 0) {
    WriteAll(STDERR_FILENO, line);
  }
}

Result<std::unique_ptr<PidFile>> PidFile::Create(const std::string& path) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return Status::IOError(Errno("cannot create pid file " + tmp));
  std::string text = std::to_string(::getpid()) + "\n";
  bool ok = WriteAll(fd, text);
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = Status::IOError(Errno("cannot write pid file " + path));
    ::unlink(tmp.c_str());
    return s;
  }
  return std::unique_ptr<PidFile>(new PidFile(path));
}

PidFile::~PidFile() {
  // Only our own: a second instance started with the same path may have replaced it.
  auto content = ReadSmallFile(path_, 64);
  if (content.ok() && Trim(*content, kWhitespace) == std::to_string(::getpid()))
    ::unlink(path_.c_str());
}

Result<std::vector<std::string>> ReadOptionsFile(const std::string& path) {
  auto data = ReadSmallFile(path, 1 << 20);
  if (!data.ok()) return data.status();
  std::vector<std::string> args;
  size_t pos = 0;
  int line_no = 0;
  while (pos < data->size()) {
    size_t nl = data->find('\n', pos);
    if (nl == std::string::npos) nl = data->size();
    std::string line(Trim(std::string_view(*data).substr(pos, nl - pos), kWhitespace));
    pos = nl + 1;
    line_no++;
    if (line.empty() || line[0] == '#') continue;
    size_t sep = line.find_first_of("= \t");
    std::string name = line.substr(0, sep);
    if (name.rfind("--", 0) == 0) name.erase(0, 2);
    if (name.empty() || name[0] == '-') {
      return Status::InvalidArgument(path + ":" + std::to_string(line_no) + ": no option name");
    }
    if (sep == std::string::npos) {
      args.push_back("--" + name);
      continue;
    }
    std::string value(Trim(std::string_view(line).substr(sep), kWhitespace));
    if (!value.empty() && value[0] == '=') value = std::string(Trim(value.substr(1), kWhitespace));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    std::string arg = "--";
    arg.append(name).append("=").append(value);
    args.push_back(std::move(arg));
  }
  return args;
}

Result<std::string> ReadValueFile(const std::string& path) {
  auto data = ReadSmallFile(path, size_t{64} * 1024);
  if (!data.ok()) return data.status();
  return std::string(Trim(*data, kWhitespace));
}

Status SdNotify(const std::string& state) {
  const char* socket_path = std::getenv("NOTIFY_SOCKET");
  if (socket_path == nullptr || socket_path[0] == '\0') return Status::OK();
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  size_t len = std::strlen(socket_path);
  if ((socket_path[0] != '/' && socket_path[0] != '@') || len >= sizeof(addr.sun_path)) {
    return Status::InvalidArgument("NOTIFY_SOCKET is not a socket path");
  }
  std::memcpy(addr.sun_path, socket_path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // the abstract namespace
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IOError(Errno("sd_notify: socket"));
  socklen_t addr_len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + len);
  ssize_t n = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                       reinterpret_cast<const struct sockaddr*>(&addr), addr_len);
  int err = errno;
  ::close(fd);
  if (n < 0) {
    errno = err;
    return Status::IOError(Errno(std::string("sd_notify to ") + socket_path));
  }
  return Status::OK();
}

}  // namespace fhirbulk
