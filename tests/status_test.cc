#include "util/status.h"

#include <gtest/gtest.h>

namespace fhirbulk {

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, CarriesCodeAndMessage) {
  Status s = Status::NotFound("no such job");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_EQ(s.ToString(), "NotFound: no such job");
  EXPECT_EQ(s.WithContext("status").message(), "status: no such job");
  EXPECT_TRUE(Status::OK().WithContext("x").ok());
}

Status FailsThenPropagates() {
  FHIRBULK_RETURN_IF_ERROR(Status::Unavailable("db down"));
  return Status::Internal("not reached");
}

TEST(StatusTest, ReturnIfErrorPropagates) {
  EXPECT_EQ(FailsThenPropagates().code(), Status::Code::kUnavailable);
}

TEST(ResultTest, ValueOrStatus) {
  Result<int> good = 7;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad = Status::InvalidArgument("nope");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
}

}  // namespace fhirbulk
