// CurrentPid (util/current_pid.h): the pid without a system call, right in a forked child too
// (nginx forks its workers after the module has run, and the audit log compares pids).

#include "util/current_pid.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fhirbulk {
namespace {

TEST(CurrentPidTest, IsThisProcessAndThenTheForkedChild) {
  ASSERT_EQ(CurrentPid(), ::getpid());  // read before the fork, as in the nginx master
  const pid_t child = ::fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    // No gtest assertions in the child: its exit code is the verdict.
    const bool own = CurrentPid() == ::getpid() && CurrentPid() != ::getppid();
    ::_exit(own ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child saw its parent's pid";
  EXPECT_EQ(CurrentPid(), ::getpid());
}

}  // namespace
}  // namespace fhirbulk
