// PgAsyncCopyOut and PgAbortStatement / PgDrainAbortedStatement (db/pg_copy_out.h): a COPY
// is read without blocking, and aborting it never leaves the worker thread stuck. The abort
// cases run in a child process with a time bound, since the failure being guarded against is
// an endless loop.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <thread>

#include "db/pg.h"
#include "db/pg_copy_out.h"
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

class PgCopyOutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (TestConninfo().empty()) GTEST_SKIP() << "FHIRBULK_TEST_PG is not set";
  }
};

// The COPY's start (CopyOutResponse) is on the socket, unread, when the abort comes: the drain
// must read the COPY data after the COPY_OUT result instead of asking for results forever.
TEST_F(PgCopyOutTest, AbortRightAfterTheCopyWasSentEndsAndLeavesTheConnectionUsable) {
  int rc = RunBounded(
      [] {
        auto conn = PgConnection::Connect(TestConninfo());
        if (!conn.ok()) return kNoConnection;
        PgAsyncCopyOut copy(conn->get());
        if (!copy.Start("COPY (SELECT pg_sleep(1), 1) TO STDOUT (FORMAT binary)").ok()) {
          return kSendFailed;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        const auto t0 = Clock::now();
        copy.Abort();
        if (Clock::now() - t0 > std::chrono::seconds(3)) return kTooSlow;
        auto r = (*conn)->Exec("SELECT 1");
        return r.ok() && r->str(0, 0) == "1" ? kOk : kNotUsable;
      },
      std::chrono::seconds(10));
  EXPECT_EQ(rc, kOk) << "-1: Abort did not return within 10 s";
}

// The same once rows flow (the COPY_OUT result was read already).
TEST_F(PgCopyOutTest, AbortWhileRowsFlowEndsAndLeavesTheConnectionUsable) {
  int rc = RunBounded(
      [] {
        auto conn = PgConnection::Connect(TestConninfo());
        if (!conn.ok()) return kNoConnection;
        PgAsyncCopyOut copy(conn->get());
        if (!copy.Start("COPY (SELECT pg_sleep(0.01), repeat('x', 10000) FROM "
                        "generate_series(1, 100000)) TO STDOUT (FORMAT binary)")
                 .ok()) {
          return kSendFailed;
        }
        std::string_view chunk;
        while (true) {  // until a first row arrived
          auto next = copy.Read(&chunk);
          if (!next.ok() || *next == PgAsyncCopyOut::Next::kEnd) return kSendFailed;
          if (*next == PgAsyncCopyOut::Next::kChunk) break;
          if (!copy.WaitReadable(100).ok()) return kSendFailed;
        }
        const auto t0 = Clock::now();
        copy.Abort();
        if (Clock::now() - t0 > std::chrono::seconds(3)) return kTooSlow;
        auto q = (*conn)->Exec("SELECT 1");
        return q.ok() && q->str(0, 0) == "1" ? kOk : kNotUsable;
      },
      std::chrono::seconds(10));
  EXPECT_EQ(rc, kOk) << "-1: Abort did not return within 10 s";
}

// No cancel reached the server (PQcancel failed): draining would read the whole statement with
// no heartbeat. The connection is shut down instead, at once, and reports itself broken.
TEST_F(PgCopyOutTest, DrainWithoutACancelClosesTheConnectionAtOnce) {
  int rc = RunBounded(
      [] {
        auto conn = PgConnection::Connect(TestConninfo());
        if (!conn.ok()) return kNoConnection;
        PGconn* c = (*conn)->raw();  // the escape hatch: a statement sent, no reader
        // statement_timeout: the backend, which writes nothing while it sleeps, ends soon.
        (void)(*conn)->Exec("SET statement_timeout = '8s'");
        if (PQsendQuery(c, "COPY (SELECT pg_sleep(6), 1) TO STDOUT (FORMAT binary)") == 0) {
          return kSendFailed;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        const auto t0 = Clock::now();
        PgDrainAbortedStatement(conn->get(), /*cancel_sent=*/false);
        if (Clock::now() - t0 > std::chrono::seconds(2)) return kTooSlow;
        return (*conn)->healthy() ? kStillUsable : kOk;
      },
      std::chrono::seconds(15));
  EXPECT_EQ(rc, kOk) << "4: the drain waited for the statement; 5: the connection was kept";
}

// A COPY read to its end: every chunk, then kEnd, and the connection is idle again.
TEST_F(PgCopyOutTest, ReadsAllRowsThenEnds) {
  auto conn = PgConnection::Connect(TestConninfo());
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  PgAsyncCopyOut copy(conn->get());
  ASSERT_TRUE(copy.Start("COPY (SELECT g FROM generate_series(1, 1000) g) TO STDOUT").ok());
  std::string text;
  int chunks = 0;
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < until) {
    std::string_view chunk;
    auto next = copy.Read(&chunk);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    if (*next == PgAsyncCopyOut::Next::kEnd) break;
    if (*next == PgAsyncCopyOut::Next::kChunk) {
      ++chunks;
      text.append(chunk.data(), chunk.size());
    } else {
      ASSERT_TRUE(copy.WaitReadable(100).ok());
    }
  }
  EXPECT_EQ(chunks, 1000);  // text COPY: one row per chunk
  EXPECT_EQ(text.substr(0, 4), "1\n2\n");
  EXPECT_TRUE((*conn)->idle());
  auto r = (*conn)->Exec("SELECT 1");
  ASSERT_TRUE(r.ok());
}

// A failing statement is the Read's Status, and leaves the connection usable.
TEST_F(PgCopyOutTest, StatementErrorIsTheStatus) {
  auto conn = PgConnection::Connect(TestConninfo());
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  PgAsyncCopyOut copy(conn->get());
  ASSERT_TRUE(copy.Start("COPY (SELECT 1/0) TO STDOUT").ok());
  Status failed;
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < until) {
    std::string_view chunk;
    auto next = copy.Read(&chunk);
    if (!next.ok()) {
      failed = next.status();
      break;
    }
    ASSERT_NE(*next, PgAsyncCopyOut::Next::kEnd);
    if (*next == PgAsyncCopyOut::Next::kWouldBlock) {
      ASSERT_TRUE(copy.WaitReadable(100).ok());
    }
  }
  EXPECT_EQ(failed.code(), Status::Code::kInvalidArgument) << failed.ToString();  // 22012
  EXPECT_NE(failed.message().find("division by zero"), std::string::npos);
  auto r = (*conn)->Exec("SELECT 1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
}

// Leaving a COPY unread (an early return) aborts it: the connection is usable at once.
TEST_F(PgCopyOutTest, DestructorAbortsAStatementInFlight) {
  auto conn = PgConnection::Connect(TestConninfo());
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  const auto t0 = Clock::now();
  {
    PgAsyncCopyOut copy(conn->get());
    ASSERT_TRUE(copy.Start("COPY (SELECT pg_sleep(30), 1) TO STDOUT").ok());
  }
  auto r = (*conn)->Exec("SELECT 1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
}

// Literal: libpq's quoting keeps quotes and backslashes as data; NUL bytes are refused.
TEST_F(PgCopyOutTest, LiteralQuotesHostileTextAndRefusesNul) {
  auto conn = PgConnection::Connect(TestConninfo());
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  for (const std::string& v : {std::string("o'brien"), std::string("a\\'); DROP TABLE x; --"),
                               std::string("\\\\''\\"), std::string("$1"), std::string("")}) {
    auto lit = (*conn)->Literal(v);
    ASSERT_TRUE(lit.ok()) << lit.status().ToString();
    auto r = (*conn)->Exec("SELECT " + *lit + "::text");
    ASSERT_TRUE(r.ok()) << r.status().ToString() << " " << *lit;
    EXPECT_EQ(r->str(0, 0), v);
  }
  auto nul = (*conn)->Literal(std::string("a\0b", 3));
  EXPECT_EQ(nul.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ((*conn)->QuoteLiteral(std::string("a\0b", 3)), "''");
}

}  // namespace
}  // namespace fhirbulk
