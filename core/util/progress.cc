#include "util/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace fhirbulk {

Progress::Progress(std::string label, std::string unit, uint64_t total, bool enabled)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(enabled),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double Progress::Elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string Progress::Thousands(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  int count = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (count > 0 && count % 3 == 0) out.insert(out.begin(), ',');
    out.insert(out.begin(), *it);
    count++;
  }
  return out;
}

std::string Progress::Bytes(double n) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (n >= 1000 && u < 4) {
    n /= 1000;
    u++;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", n, units[u]);
  return buf;
}

std::string Progress::Duration(double seconds) {
  if (seconds < 0) seconds = 0;
  long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

std::string Progress::Line(bool final_line) const {
  double elapsed = Elapsed();
  double rate = elapsed > 0 ? done_ / elapsed : 0;
  bool bytes = unit_ == "bytes";
  std::string line = label_ + " " + (bytes ? Bytes(done_) : Thousands(done_));
  if (total_ > 0 && !final_line) {
    line += "/" + (bytes ? Bytes(total_) : Thousands(total_));
  }
  if (!bytes) line += " " + unit_;
  if (final_line) {
    line += " in " + Duration(elapsed);
  } else if (total_ > 0) {
    line += " " + std::to_string(done_ * 100 / total_) + "%";
  }
  line += " " + (bytes ? Bytes(rate) : Thousands(static_cast<uint64_t>(rate))) + "/s";
  if (!final_line && total_ > 0 && rate > 0 && done_ <= total_) {
    line += " ETA " + Duration((total_ - done_) / rate);
  }
  return line;
}

void Progress::Update(uint64_t done) {
  done_ = done;
  if (!enabled_ || !tty_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  std::fprintf(stderr, "\r\033[K%s", Line(false).c_str());
  std::fflush(stderr);
}

void Progress::Finish() {
  if (finished_) return;
  finished_ = true;
  if (!enabled_) return;
  std::fprintf(stderr, "%s%s\n", tty_ ? "\r\033[K" : "", Line(true).c_str());
}

}  // namespace fhirbulk
