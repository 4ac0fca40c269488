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
#include <mutex>
#include <optional>
#include <string>
#include <utility>

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

  void Print(const std::string& line);           // REQUIRES: mu_ held
  void Redraw(bool force);                       // REQUIRES: mu_ held
  void EraseLive();                              // REQUIRES: mu_ held
  std::string TotalsLine();                      // REQUIRES: mu_ held
  void Totals(uint64_t* bytes, int64_t* lines);  // REQUIRES: mu_ held

  const bool tty_;
  const bool quiet_;
  std::mutex mu_;
  std::string status_;
  std::string logged_state_;
  Clock::time_point logged_state_at_{};
  int live_lines_ = 0;  // lines of the live part currently on screen
  Clock::time_point last_draw_{};
  Clock::time_point last_log_totals_{};

  bool downloading_ = false;
  int files_total_ = 0, files_done_ = 0;
  int64_t resources_total_ = 0;
  uint64_t bytes_done_ = 0;  // finished files
  int64_t lines_done_ = 0;
  Clock::time_point download_start_{};
  std::map<int, Active> active_;
  int next_handle_ = 0;
  struct Sample {
    Clock::time_point at;
    uint64_t bytes;
    int64_t lines;
  };
  std::deque<Sample> samples_;  // recent totals, for the rate and the ETA
  int width_ = 100;
};

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_DISPLAY_H_
