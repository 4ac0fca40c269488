// ReadReplicas (worker/read_replicas.h): which standby a unit reads from. A real standby is
// the t/ tests' (t/26-29); here: nothing configured, an unreachable one, and a primary given
// as a standby, which must never be read from.

#include "worker/read_replicas.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_db.h"

namespace fhirbulk {
namespace {

struct Counting {
  int connects = 0;
  std::vector<std::string> log;
  ReadReplicas::ConnectFn Connect() {
    return [this](const std::string& ci) {
      connects++;
      return PgConnection::Connect(ci);
    };
  }
  std::function<void(const std::string&)> Log() {
    return [this](const std::string& m) { log.push_back(m); };
  }
};

TEST(ReadReplicasTest, NoneConfiguredPicksThePrimary) {
  Counting c;
  ReadReplicas r({}, 0, c.Connect(), c.Log());
  EXPECT_TRUE(r.empty());
  auto p = r.Pick("0/1", 1000, {}, nullptr);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->index, -1);
  EXPECT_EQ(p->conn, nullptr);
  EXPECT_EQ(c.connects, 0);
}

TEST(ReadReplicasTest, AnUnreachableStandbyIsSkippedThenLeftAloneForTheCooldown) {
  Counting c;
  ReadReplicas r({"host=127.0.0.1 port=1 connect_timeout=2"}, 0, c.Connect(), c.Log(),
                 /*cooldown_ms=*/60000);
  auto p = r.Pick("0/1", 5000, {}, nullptr);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->index, -1);
  EXPECT_EQ(p->why_not, "no standby usable");  // not waited for: nothing lags, it is down
  EXPECT_EQ(c.connects, 1);
  ASSERT_EQ(c.log.size(), 1u);
  EXPECT_NE(c.log[0].find("not used for 60 s"), std::string::npos) << c.log[0];
  p = r.Pick("0/1", 5000, {}, nullptr);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->index, -1);
  EXPECT_EQ(c.connects, 1) << "no reconnect during the cooldown";
}

TEST(ReadReplicasTest, APrimaryIsNeverReadFrom) {
  FHIRBULK_REQUIRE_TEST_DB();
  Counting c;
  ReadReplicas r({TestConninfo()}, 0, c.Connect(), c.Log());
  auto p = r.Pick("0/1", 1000, {}, nullptr);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->index, -1);
  EXPECT_EQ(c.connects, 1);
  ASSERT_EQ(c.log.size(), 1u);
  EXPECT_NE(c.log[0].find("not a standby"), std::string::npos) << c.log[0];
}

TEST(ReadReplicasTest, AnExcludedStandbyIsNotTried) {
  Counting c;
  ReadReplicas r({"host=127.0.0.1 port=1 connect_timeout=2"}, 0, c.Connect(), c.Log());
  auto p = r.Pick("0/1", 1000, {0}, nullptr);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->index, -1);
  EXPECT_EQ(c.connects, 0);
}

}  // namespace
}  // namespace fhirbulk
