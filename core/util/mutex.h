// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable with the annotations
// clang's thread-safety analysis needs (util/thread_annotations.h), in the manner of LevelDB's
// port::Mutex.
//
// A class shared between threads declares `Mutex mu_;`, marks what it protects
// GUARDED_BY(mu_) and its lock-taking or lock-needing methods EXCLUDES(mu_) / REQUIRES(mu_);
// the clang builds then refuse to compile an unguarded access.
//
// CondVar waits take the mutex as an argument (rather than binding it at construction) so the
// analysis can check that the caller holds that very mutex. Wait in a loop on the condition:
//     MutexLock lock(&mu_);
//     while (queue_.empty()) changed_.Wait(&mu_);
// (A predicate lambda would be analysed as a function of its own that holds no lock.)
//
// Thread-safety: that is the point; a Mutex and a CondVar may be used from any thread.

#ifndef FHIRBULK_UTIL_MUTEX_H_
#define FHIRBULK_UTIL_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "util/thread_annotations.h"

namespace fhirbulk {

class CondVar;

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  // Tells the analysis the caller holds this mutex where it cannot see it (a callback that
  // is only ever run under the lock). Not checked at run time.
  void AssertHeld() ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for its scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases *mu, waits for a Signal (or a spurious wake-up), takes *mu again.
  void Wait(Mutex* mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // *mu stays held, as the caller expects
  }
  // As Wait, but returns false once `deadline` has passed.
  bool WaitUntil(Mutex* mu, std::chrono::steady_clock::time_point deadline) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    bool signalled = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return signalled;
  }

  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_UTIL_MUTEX_H_
