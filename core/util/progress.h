// Progress: a one-line progress display for long work (loader, generator, downloads).
//
// On a TTY it redraws one line on stderr, at most every 200 ms: done/total, percent, rate and
// ETA ("load 120,000/390,000 resources 31% 48,210/s ETA 0:06"). When stderr is not a TTY it
// prints nothing until Finish(), which always prints one summary line (unless quiet).
//
// Thread-safety: one thread at a time.

#ifndef FHIRBULK_UTIL_PROGRESS_H_
#define FHIRBULK_UTIL_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <string>

namespace fhirbulk {

class Progress {
 public:
  // label: what is being done ("load"); unit: what is counted ("resources", "bytes");
  // total: 0 when unknown (then no percent or ETA).
  Progress(std::string label, std::string unit, uint64_t total, bool enabled = true);

  void set_total(uint64_t total) { total_ = total; }
  void Add(uint64_t n) { Update(done_ + n); }
  void Update(uint64_t done);
  // Prints the final line: count, elapsed time and average rate.
  void Finish();

  // Human formats: 1234567 -> "1,234,567"; bytes -> "12.3 MB"; seconds -> "1:02:03".
  static std::string Thousands(uint64_t n);
  static std::string Bytes(double n);
  static std::string Duration(double seconds);

 private:
  std::string Line(bool final_line) const;
  double Elapsed() const;

  std::string label_, unit_;
  uint64_t total_ = 0, done_ = 0;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool finished_ = false;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_UTIL_PROGRESS_H_
