// CurrentPid: getpid() without a system call per use.
//
// glibc no longer caches getpid(), and the nginx event loop asks on every download (the
// audit log checks that its writer thread belongs to this process, not to the master it
// was forked from). The pid is read once and read again in every child of fork(), through
// pthread_atfork; a child made by a raw clone() or vfork() would keep the parent's value.
//
// Thread-safety: any thread.

#ifndef FHIRBULK_UTIL_CURRENT_PID_H_
#define FHIRBULK_UTIL_CURRENT_PID_H_

#include <sys/types.h>

namespace fhirbulk {

pid_t CurrentPid();

}  // namespace fhirbulk

#endif  // FHIRBULK_UTIL_CURRENT_PID_H_
