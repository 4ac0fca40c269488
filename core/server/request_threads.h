// The nginx thread-pool threads that ran a request of ours, and a wait for them to be gone.
//
// Why: at worker exit nginx's ngx_thread_pool_destroy returns as soon as each pool thread has
// taken its exit task, while that thread is still inside pthread_exit running its
// thread-local destructors: ours closes the thread's PostgreSQL connection (PQfinish), and the
// thread-exit hooks of libpq's libraries (OpenSSL, Kerberos) follow. nginx then runs exit(),
// whose atexit handlers and library finalizers tear down the state those hooks use: a rare
// abort of an exiting worker (SIGABRT, seen under load in t/24). The module's exit_process
// hook, which nginx runs after the thread pools', waits here first (t/04-worker-exit.t).
//
// Thread-safety: both functions may be called from any thread. Linux only (elsewhere the wait
// returns at once).

#ifndef FHIRBULK_SERVER_REQUEST_THREADS_H_
#define FHIRBULK_SERVER_REQUEST_THREADS_H_

#include <chrono>

namespace fhirbulk {

// Records the calling thread (once per thread; later calls cost a thread-local check).
void NoteRequestThread();

// Waits until every thread this process recorded has exited, or `timeout` has passed.
// Returns how many are still alive (0: all gone).
int WaitForRequestThreadsToExit(std::chrono::milliseconds timeout);

}  // namespace fhirbulk

#endif  // FHIRBULK_SERVER_REQUEST_THREADS_H_
