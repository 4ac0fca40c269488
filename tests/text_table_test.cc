#include "util/text_table.h"

#include <gtest/gtest.h>

#include <string>

namespace fhirbulk {
namespace {

TextTable Sample() {
  TextTable t;
  t.AddColumn("id", true);
  t.AddColumn("client");
  t.AddColumn("detail");
  t.AddRow({"1", "c1", "plain"});
  t.AddRow({"22", std::nullopt, "a,b \"q\"\nnext"});
  return t;
}

TEST(TextTableTest, ParsesFormats) {
  EXPECT_EQ(*ParseTableFormat("table"), TableFormat::kTable);
  EXPECT_EQ(*ParseTableFormat("csv"), TableFormat::kCsv);
  EXPECT_EQ(*ParseTableFormat("json"), TableFormat::kJson);
  EXPECT_FALSE(ParseTableFormat("JSON").ok());
  EXPECT_FALSE(ParseTableFormat("").ok());
}

TEST(TextTableTest, TableAlignsEscapesAndShowsNull) {
  EXPECT_EQ(Sample().RenderTable(),
            "id  client  detail\n"
            " 1  c1      plain\n"
            "22  -       a,b \"q\"\\x0anext\n");
}

TEST(TextTableTest, TableEscapesTerminalControlAndCuts) {
  TextTable t;
  t.AddColumn("x");
  t.AddRow({std::string("\x1b[2Jboom\\") + "\xff"});
  EXPECT_EQ(t.RenderTable(), "x\n\\x1b[2Jboom\\x5c\\xff\n");
  TextTable l;
  l.AddColumn("x");
  l.AddRow({"abcdefghij"});
  EXPECT_EQ(l.RenderTable(6), "x\nabc...\n");
}

TEST(TextTableTest, CsvQuotesAsRfc4180) {
  EXPECT_EQ(Sample().RenderCsv(),
            "id,client,detail\r\n"
            "1,c1,plain\r\n"
            "22,,\"a,b \"\"q\"\"\nnext\"\r\n");
}

TEST(TextTableTest, JsonTypesAndEscapes) {
  EXPECT_EQ(Sample().RenderJson(),
            "[\n"
            "  {\"id\": 1, \"client\": \"c1\", \"detail\": \"plain\"},\n"
            "  {\"id\": 22, \"client\": null, \"detail\": \"a,b \\\"q\\\"\\nnext\"}\n"
            "]\n");
  TextTable empty;
  empty.AddColumn("a");
  EXPECT_EQ(empty.RenderJson(), "[]\n");
}

TEST(TextTableTest, JsonNumericColumnWithTextStaysAString) {
  TextTable t;
  t.AddColumn("n", true);
  t.AddRow({"12.5"});
  t.AddRow({"-3"});
  t.AddRow({"1e5"});
  t.AddRow({"12."});
  EXPECT_EQ(t.RenderJson(),
            "[\n  {\"n\": 12.5},\n  {\"n\": -3},\n  {\"n\": \"1e5\"},\n  {\"n\": \"12.\"}\n]\n");
}

TEST(TextTableTest, JsonQuoteKeepsUtf8AndEscapesInvalidBytes) {
  EXPECT_EQ(JsonQuote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(JsonQuote("a\x01"), "\"a\\u0001\"");
  EXPECT_EQ(JsonQuote("\xff\xc3"), "\"\\u00ff\\u00c3\"");             // invalid and truncated
  EXPECT_EQ(JsonQuote("\xc0\xaf"), "\"\\u00c0\\u00af\"");             // overlong
  EXPECT_EQ(JsonQuote("\xed\xa0\x80"), "\"\\u00ed\\u00a0\\u0080\"");  // surrogate
  EXPECT_EQ(JsonQuote("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");
}

TEST(TextTableTest, RowsArePaddedOrCut) {
  TextTable t;
  t.AddColumn("a");
  t.AddColumn("b");
  t.AddRow({"1"});
  t.AddRow({"1", "2", "3"});
  EXPECT_EQ(t.RenderCsv(), "a,b\r\n1,\r\n1,2\r\n");
  EXPECT_EQ(t.rows(), 2u);
}

}  // namespace
}  // namespace fhirbulk
