// Display: what the export client shows its user, on stderr.
//
// On a terminal: one live status line while the export runs (the server's X-Progress and
// when the next poll is due), then during downloads a live block with a totals line (files,
// resources against the manifest's counts, bytes, rate over the last seconds, ETA) and one
// line per file in flight (bytes, lines, percent of its count). Log lines scroll above the
// live part. Elsewhere (a pipe, a log file): no live part; time-stamped log lines, with a
// totals line every 10 s during downloads. Quiet: log lines that are warnings only.
//
// Thread-safety: all members may be called from any thread (download threads report into it).

#ifndef FHIRBULK_CLIENT_DISPLAY_H_
#define FHIRBULK_CLIENT_DISPLAY_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "util/mutex.h"

namespace fhirbulk {
namespace client {

class Display {
 public:
  Display(bool tty, bool quiet);

  // A message that stays (scrolls). Warnings are shown even when quiet.
  void Log(const std::string& message);
  void Warn(const std::string& message);
  // A log line that the live display already shows on a terminal (a finished file): logged
  // only when stderr is not one.
  void Detail(const std::string& message);

  // The status line while polling: `state` (e.g. the X-Progress text) and a `detail` that
  // changes every time (e.g. when the next poll is due). Not on a TTY it is logged when the
  // state changes, and at least once a minute.
  void SetStatus(const std::string& state, const std::string& detail);

  // Downloads: `files` in all, the sum of the manifest's counts (0 if not all known).
  void BeginDownloads(int files, int64_t total_resources);
  // Returns a handle for FileProgress/FileDone.
  int FileStarted(const std::string& name, std::optional<int64_t> count);
  // Cumulative figures of one file (bytes on disk, lines seen).
  void FileProgress(int handle, uint64_t bytes, int64_t lines);
  // The file is finished (complete: counted as downloaded) or abandoned.
  void FileDone(int handle, bool complete);
  void EndDownloads();

  // Clears the live part (before the final summary).
  void Clear();

  // A wait for messages: "1.5 s", "2 s", "60 s".
  static std::string Seconds(double seconds);

 private:
  struct Active {
    std::string name;
    std::optional<int64_t> count;
    uint64_t bytes = 0;
    int64_t lines = 0;
  };
  using Clock = std::chrono::steady_clock;

  void Print(const std::string& line) REQUIRES(mu_);
  void Redraw(bool force) REQUIRES(mu_);
  void EraseLive() REQUIRES(mu_);
  std::string TotalsLine() REQUIRES(mu_);
  void Totals(uint64_t* bytes, int64_t* lines) REQUIRES(mu_);

  const bool tty_;
  const bool quiet_;
  Mutex mu_;
  std::string status_ GUARDED_BY(mu_);
  std::string logged_state_ GUARDED_BY(mu_);
  Clock::time_point logged_state_at_ GUARDED_BY(mu_){};
  int live_lines_ GUARDED_BY(mu_) = 0;  // lines of the live part currently on screen
  Clock::time_point last_draw_ GUARDED_BY(mu_){};
  Clock::time_point last_log_totals_ GUARDED_BY(mu_){};

  bool downloading_ GUARDED_BY(mu_) = false;
  int files_total_ GUARDED_BY(mu_) = 0;
  int files_done_ GUARDED_BY(mu_) = 0;
  int64_t resources_total_ GUARDED_BY(mu_) = 0;
  uint64_t bytes_done_ GUARDED_BY(mu_) = 0;  // finished files
  int64_t lines_done_ GUARDED_BY(mu_) = 0;
  Clock::time_point download_start_ GUARDED_BY(mu_){};
  std::map<int, Active> active_ GUARDED_BY(mu_);
  int next_handle_ GUARDED_BY(mu_) = 0;
  struct Sample {
    Clock::time_point at;
    uint64_t bytes;
    int64_t lines;
  };
  std::deque<Sample> samples_ GUARDED_BY(mu_);  // recent totals, for the rate and the ETA
  int width_ GUARDED_BY(mu_) = 100;
};

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_DISPLAY_H_
