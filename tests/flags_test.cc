#include "util/flags.h"

#include <gtest/gtest.h>

namespace fhirbulk {

namespace {
Status ParseArgs(FlagParser* p, std::vector<std::string> args) {
  std::vector<char*> argv;
  static std::string prog = "cmd";
  argv.push_back(prog.data());
  for (auto& a : args) argv.push_back(a.data());
  return p->Parse(static_cast<int>(argv.size()), argv.data());
}
}  // namespace

TEST(FlagParserTest, ParsesAllKinds) {
  std::string db;
  long long n = 0;
  bool quiet = false;
  double rate = 0;
  std::vector<std::string> types;
  FlagParser p("cmd [options]", "does things");
  p.AddString("db", &db, "connection");
  p.AddInt("patients", &n, "how many");
  p.AddBool("quiet", &quiet, "shh");
  p.AddDouble("rate", &rate, "rate");
  p.AddRepeated("type", &types, "types");
  ASSERT_TRUE(ParseArgs(&p, {"--db=host=x", "--patients", "12", "--quiet", "--rate=1.5", "--type",
                             "A", "--type=B", "file1", "--", "--file2"})
                  .ok());
  EXPECT_EQ(db, "host=x");
  EXPECT_EQ(n, 12);
  EXPECT_TRUE(quiet);
  EXPECT_DOUBLE_EQ(rate, 1.5);
  EXPECT_EQ(types, (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(p.positionals(), (std::vector<std::string>{"file1", "--file2"}));
  EXPECT_FALSE(p.help_requested());
}

TEST(FlagParserTest, RejectsUnknownAndBadValues) {
  long long n = 0;
  FlagParser p("cmd", "d");
  p.AddInt("n", &n, "n");
  EXPECT_EQ(ParseArgs(&p, {"--nope"}).code(), Status::Code::kInvalidArgument);
  FlagParser q("cmd", "d");
  q.AddInt("n", &n, "n");
  EXPECT_EQ(ParseArgs(&q, {"--n=12x"}).code(), Status::Code::kInvalidArgument);
  FlagParser r("cmd", "d");
  r.AddInt("n", &n, "n");
  EXPECT_EQ(ParseArgs(&r, {"--n"}).code(), Status::Code::kInvalidArgument);
}

TEST(FlagParserTest, HelpListsFlags) {
  std::string db;
  FlagParser p("cmd [options]", "does things");
  p.AddString("db", &db, "the connection string", "CONNINFO");
  ASSERT_TRUE(ParseArgs(&p, {"--help"}).ok());
  EXPECT_TRUE(p.help_requested());
  std::string h = p.Help();
  EXPECT_NE(h.find("usage: cmd [options]"), std::string::npos);
  EXPECT_NE(h.find("--db CONNINFO"), std::string::npos);
  EXPECT_NE(h.find("the connection string"), std::string::npos);
}

}  // namespace fhirbulk
