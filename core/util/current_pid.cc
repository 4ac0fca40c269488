#include "util/current_pid.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

namespace fhirbulk {

namespace {
std::atomic<pid_t> g_pid{0};
void RememberPid() { g_pid.store(::getpid(), std::memory_order_relaxed); }
}  // namespace

pid_t CurrentPid() {
  static std::once_flag once;
  std::call_once(once, [] {
    pthread_atfork(nullptr, nullptr, RememberPid);
    RememberPid();
  });
  return g_pid.load(std::memory_order_relaxed);
}

}  // namespace fhirbulk
