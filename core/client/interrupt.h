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

#include "util/mutex.h"

namespace fhirbulk {
namespace client {

class Interrupt {
 public:
  void Trigger() {
    {
      MutexLock lock(&mu_);
      triggered_.store(true);
    }
    cv_.SignalAll();
  }
  // Lets work run again (e.g. the DELETE the user asked for after Ctrl-C).
  void Reset() {
    MutexLock lock(&mu_);
    triggered_.store(false);
  }
  bool triggered() const { return triggered_.load(); }

  // Sleeps for `seconds`; false if interrupted before (or while) sleeping.
  bool SleepFor(double seconds) const {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(seconds));
    MutexLock lock(&mu_);
    while (!triggered_.load() && cv_.WaitUntil(&mu_, deadline)) {
    }
    return !triggered_.load();
  }

 private:
  std::atomic<bool> triggered_{false};
  // Orders Trigger against a sleeper's check, so no wake-up is lost.
  mutable Mutex mu_;
  mutable CondVar cv_;
};

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_INTERRUPT_H_
