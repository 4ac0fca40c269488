// AbortStatement / DrainAbortedStatement (unit_runner.h): aborting a unit's statement never
// leaves the worker thread stuck. Each case runs in a child process with a time bound, since
// the failure being guarded against is an endless loop.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <thread>

#include "db/pg.h"
#include "worker/unit_runner.h"
#include "test_db.h"

namespace fhirbulk {
namespace {

using Clock = std::chrono::steady_clock;

// Runs `body` in a child; its exit code, or -1 when it did not end within `limit` (killed).
int RunBounded(const std::function<int()>& body, std::chrono::seconds limit) {
  pid_t pid = ::fork();
  if (pid == 0) std::_Exit(body());
  const auto until = Clock::now() + limit;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() >= until) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

// Exit codes of the children.
constexpr int kOk = 0, kNoConnection = 2, kSendFailed = 3, kTooSlow = 4, kStillUsable = 5,
              kNotUsable = 6;

class UnitRunnerAbortTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (TestConninfo().empty()) GTEST_SKIP() << "FHIRBULK_TEST_PG is not set";
  }
};

// The COPY's start (CopyOutResponse) is on the socket, unread, when the abort comes: the drain
// must read the COPY data after the COPY_OUT result instead of asking for results forever.
TEST_F(UnitRunnerAbortTest, AbortRightAfterTheCopyWasSentEndsAndLeavesTheConnectionUsable) {
  int rc = RunBounded(
      [] {
        auto conn = PgConnection::Connect(TestConninfo());
        if (!conn.ok()) return kNoConnection;
        PGconn* c = (*conn)->raw();
        if (PQsendQuery(c, "COPY (SELECT pg_sleep(1), 1) TO STDOUT (FORMAT binary)") == 0) {
          return kSendFailed;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        const auto t0 = Clock::now();
        AbortStatement(conn->get());
        if (Clock::now() - t0 > std::chrono::seconds(3)) return kTooSlow;
        auto r = (*conn)->Exec("SELECT 1");
        return r.ok() && r->str(0, 0) == "1" ? kOk : kNotUsable;
      },
      std::chrono::seconds(10));
  EXPECT_EQ(rc, kOk) << "-1: AbortStatement did not return within 10 s";
}

// The same once rows flow (the COPY_OUT result was read already).
TEST_F(UnitRunnerAbortTest, AbortWhileRowsFlowEndsAndLeavesTheConnectionUsable) {
  int rc = RunBounded(
      [] {
        auto conn = PgConnection::Connect(TestConninfo());
        if (!conn.ok()) return kNoConnection;
        PGconn* c = (*conn)->raw();
        if (PQsendQuery(
                c,
                "COPY (SELECT pg_sleep(0.01), repeat('x', 10000) FROM generate_series(1, 100000)) "
                "TO STDOUT (FORMAT binary)") == 0) {
          return kSendFailed;
        }
        PGresult* r = PQgetResult(c);  // blocks until the COPY starts
        const bool copy_out = PQresultStatus(r) == PGRES_COPY_OUT;
        PQclear(r);
        if (!copy_out) return kSendFailed;
        char* buf = nullptr;
        if (PQgetCopyData(c, &buf, 0) <= 0) return kSendFailed;  // a first row arrived
        PQfreemem(buf);
        const auto t0 = Clock::now();
        AbortStatement(conn->get());
        if (Clock::now() - t0 > std::chrono::seconds(3)) return kTooSlow;
        auto q = (*conn)->Exec("SELECT 1");
        return q.ok() && q->str(0, 0) == "1" ? kOk : kNotUsable;
      },
      std::chrono::seconds(10));
  EXPECT_EQ(rc, kOk) << "-1: AbortStatement did not return within 10 s";
}

// No cancel reached the server (PQcancel failed): draining would read the whole statement with
// no heartbeat. The connection is shut down instead, at once, and reports itself broken.
TEST_F(UnitRunnerAbortTest, DrainWithoutACancelClosesTheConnectionAtOnce) {
  int rc = RunBounded(
      [] {
        auto conn = PgConnection::Connect(TestConninfo());
        if (!conn.ok()) return kNoConnection;
        PGconn* c = (*conn)->raw();
        // statement_timeout: the backend, which writes nothing while it sleeps, ends soon.
        (void)(*conn)->Exec("SET statement_timeout = '8s'");
        if (PQsendQuery(c, "COPY (SELECT pg_sleep(6), 1) TO STDOUT (FORMAT binary)") == 0) {
          return kSendFailed;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        const auto t0 = Clock::now();
        DrainAbortedStatement(conn->get(), /*cancel_sent=*/false);
        if (Clock::now() - t0 > std::chrono::seconds(2)) return kTooSlow;
        return (*conn)->healthy() ? kStillUsable : kOk;
      },
      std::chrono::seconds(15));
  EXPECT_EQ(rc, kOk) << "4: the drain waited for the statement; 5: the connection was kept";
}

}  // namespace
}  // namespace fhirbulk
