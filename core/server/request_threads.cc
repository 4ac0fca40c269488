#include "server/request_threads.h"

#include <unistd.h>

#include <cerrno>
#include <thread>
#include <vector>

#ifdef __linux__
#include <sys/syscall.h>
#endif

#include "util/current_pid.h"
#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace fhirbulk {
namespace {

struct Thread {
  pid_t pid;  // the process that noted it: a forked child inherits the list, not the threads
  pid_t tid;
};

struct Registry {
  Mutex mu;
  std::vector<Thread> threads GUARDED_BY(mu);
};

// Never destroyed: the wait runs while the process exits.
Registry* TheRegistry() {
  static auto* registry = new Registry;
  return registry;
}

#ifdef __linux__
pid_t CurrentTid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// A thread of this process that has exited is unknown to the kernel (ESRCH): non-leader
// threads are reaped as they exit, after every user-space destructor has run.
bool Alive(const Thread& t) {
  return ::syscall(SYS_tgkill, t.pid, t.tid, 0) == 0 || errno != ESRCH;
}
#endif

}  // namespace

void NoteRequestThread() {
#ifdef __linux__
  thread_local pid_t noted_in = 0;
  const pid_t pid = CurrentPid();
  if (noted_in == pid) return;
  noted_in = pid;
  Registry* r = TheRegistry();
  MutexLock lock(&r->mu);
  r->threads.push_back(Thread{pid, CurrentTid()});
#endif
}

int WaitForRequestThreadsToExit(std::chrono::milliseconds timeout) {
#ifdef __linux__
  const pid_t pid = ::getpid();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Registry* r = TheRegistry();
  while (true) {
    int alive = 0;
    {
      MutexLock lock(&r->mu);
      for (const Thread& t : r->threads) {
        if (t.pid == pid && Alive(t)) alive++;
      }
    }
    if (alive == 0 || std::chrono::steady_clock::now() >= deadline) return alive;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
#else
  (void)timeout;
  return 0;
#endif
}

}  // namespace fhirbulk
