#include "client/display.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "util/fhir_time.h"
#include "util/progress.h"

namespace fhirbulk {
namespace client {

namespace {

constexpr auto kRedrawEvery = std::chrono::milliseconds(200);
constexpr auto kRateWindow = std::chrono::seconds(5);
constexpr auto kLogTotalsEvery = std::chrono::seconds(10);
constexpr auto kLogStateEvery = std::chrono::seconds(60);
constexpr size_t kMaxFileLines = 8;

std::string Percent(int64_t part, int64_t whole) {
  if (whole <= 0) return "";
  return " (" + std::to_string(part * 100 / whole) + "%)";
}

}  // namespace

Display::Display(bool tty, bool quiet) : tty_(tty), quiet_(quiet) {
  struct winsize ws {};
  if (tty_ && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) width_ = ws.ws_col;
}

void Display::Print(const std::string& line) {
  if (tty_) {
    std::fprintf(stderr, "%s\n", line.c_str());
  } else {
    // whole seconds are enough for a log
    std::string when = FormatInstant(NowMicros() / 1000000 * 1000000);
    std::fprintf(stderr, "%s %s\n", when.c_str(), line.c_str());
  }
  std::fflush(stderr);
}

void Display::EraseLive() {
  for (; live_lines_ > 0; --live_lines_) std::fputs("\033[1A\r\033[2K", stderr);
}

void Display::Log(const std::string& message) {
  if (quiet_) return;
  MutexLock lock(&mu_);
  EraseLive();
  Print(message);
  Redraw(true);
}

void Display::Detail(const std::string& message) {
  if (!tty_) Log(message);
}

void Display::Warn(const std::string& message) {
  MutexLock lock(&mu_);
  EraseLive();
  Print("warning: " + message);
  Redraw(true);
}

void Display::SetStatus(const std::string& state, const std::string& detail) {
  if (quiet_) return;
  MutexLock lock(&mu_);
  status_ = state + (detail.empty() ? "" : ", " + detail);
  if (tty_) {
    Redraw(true);
    return;
  }
  auto now = Clock::now();
  if (state != logged_state_ || now - logged_state_at_ >= kLogStateEvery) {
    logged_state_ = state;
    logged_state_at_ = now;
    Print(status_);
  }
}

void Display::BeginDownloads(int files, int64_t total_resources) {
  MutexLock lock(&mu_);
  status_.clear();
  downloading_ = true;
  files_total_ = files;
  resources_total_ = total_resources;
  download_start_ = last_log_totals_ = Clock::now();
  samples_.assign(1, Sample{download_start_, 0, 0});
  Redraw(true);
}

int Display::FileStarted(const std::string& name, std::optional<int64_t> count) {
  MutexLock lock(&mu_);
  int handle = next_handle_++;
  active_[handle] = Active{name, count, 0, 0};
  Redraw(false);
  return handle;
}

void Display::FileProgress(int handle, uint64_t bytes, int64_t lines) {
  MutexLock lock(&mu_);
  auto it = active_.find(handle);
  if (it == active_.end()) return;
  it->second.bytes = bytes;
  it->second.lines = lines;
  if (quiet_) return;
  if (tty_) {
    Redraw(false);
  } else if (Clock::now() - last_log_totals_ >= kLogTotalsEvery) {
    last_log_totals_ = Clock::now();
    Print(TotalsLine());
  }
}

void Display::FileDone(int handle, bool complete) {
  MutexLock lock(&mu_);
  auto it = active_.find(handle);
  if (it == active_.end()) return;
  bytes_done_ += it->second.bytes;
  lines_done_ += it->second.lines;
  if (complete) files_done_++;
  active_.erase(it);
  Redraw(false);
}

void Display::EndDownloads() {
  MutexLock lock(&mu_);
  downloading_ = false;
  EraseLive();
}

void Display::Clear() {
  MutexLock lock(&mu_);
  status_.clear();
  EraseLive();
}

std::string Display::Seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), s < 10 && s != static_cast<int>(s) ? "%.1f s" : "%.0f s", s);
  return buf;
}

void Display::Totals(uint64_t* bytes, int64_t* lines) {
  *bytes = bytes_done_;
  *lines = lines_done_;
  for (const auto& [handle, a] : active_) {
    *bytes += a.bytes;
    *lines += a.lines;
  }
}

std::string Display::TotalsLine() {
  uint64_t bytes;
  int64_t lines;
  Totals(&bytes, &lines);
  auto now = Clock::now();
  samples_.push_back({now, bytes, lines});
  while (samples_.size() > 2 && now - samples_.front().at > kRateWindow) samples_.pop_front();
  const Sample& from = samples_.front();
  double span = std::chrono::duration<double>(now - from.at).count();
  double byte_rate = span >= 0.2 ? (bytes - from.bytes) / span : 0;
  double line_rate = span >= 0.2 ? (lines - from.lines) / span : 0;

  std::string line = "downloaded " + std::to_string(files_done_) + "/" +
                     std::to_string(files_total_) + " files, " + Progress::Thousands(lines);
  if (resources_total_ > 0) line += "/" + Progress::Thousands(resources_total_);
  line += " resources" + Percent(lines, resources_total_) + ", " + Progress::Bytes(bytes) + ", " +
          Progress::Bytes(byte_rate) + "/s";
  if (resources_total_ > 0 && line_rate > 0 && lines <= resources_total_) {
    line += ", ETA " + Progress::Duration((resources_total_ - lines) / line_rate);
  }
  return line;
}

void Display::Redraw(bool force) {
  if (!tty_ || quiet_) return;
  auto now = Clock::now();
  if (!force && now - last_draw_ < kRedrawEvery) return;
  last_draw_ = now;
  std::vector<std::string> lines;
  if (downloading_) {
    lines.push_back(TotalsLine());
    size_t shown = 0;
    for (const auto& [handle, a] : active_) {
      if (shown++ == kMaxFileLines) {
        lines.push_back("  ... and " + std::to_string(active_.size() - kMaxFileLines) + " more");
        break;
      }
      std::string l =
          "  " + a.name + "  " + Progress::Bytes(a.bytes) + ", " + Progress::Thousands(a.lines);
      if (a.count) l += "/" + Progress::Thousands(*a.count);
      l += " lines";
      if (a.count) l += Percent(a.lines, *a.count);
      lines.push_back(l);
    }
  } else if (!status_.empty()) {
    lines.push_back(status_);
  }
  EraseLive();
  for (std::string& l : lines) {
    if (static_cast<int>(l.size()) >= width_) l.resize(width_ - 1);  // no wrapping
    std::fprintf(stderr, "%s\n", l.c_str());
  }
  live_lines_ = static_cast<int>(lines.size());
  std::fflush(stderr);
}

}  // namespace client
}  // namespace fhirbulk
