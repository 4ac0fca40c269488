// Interrupt: how Ctrl-C reaches the export client's sleeps and transfers.
//
// A signal-handling thread calls Trigger(); waits (SleepFor) wake at once, and HttpClient's
// transfers stop with Aborted at their next progress callback (within a second).
//
// Thread-safety: all members may be called from any thread.

#ifndef FHIRBULK_CLIENT_INTERRUPT_H_
#define FHIRBULK_CLIENT_INTERRUPT_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace fhirbulk {
namespace client {

class Interrupt {
 public:
  void Trigger() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      triggered_.store(true);
    }
    cv_.notify_all();
  }
  // Lets work run again (e.g. the DELETE the user asked for after Ctrl-C).
  void Reset() {
    std::lock_guard<std::mutex> lock(mu_);
    triggered_.store(false);
  }
  bool triggered() const { return triggered_.load(); }

  // Sleeps for `seconds`; false if interrupted before (or while) sleeping.
  bool SleepFor(double seconds) const {
    std::unique_lock<std::mutex> lock(mu_);
    return !cv_.wait_for(lock, std::chrono::duration<double>(seconds),
                         [this] { return triggered_.load(); });
  }

 private:
  std::atomic<bool> triggered_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
};

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_INTERRUPT_H_
