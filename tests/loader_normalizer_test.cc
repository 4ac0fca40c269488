// ResourceNormalizer, ParsedJson and PgCopyEncoder: the loader's pure parts.

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <rapidjson/document.h>

#include <string>

#include "db/pg_copy.h"
#include "load/parsed_json.h"
#include "load/resource_normalizer.h"

namespace fhirbulk {
namespace {

ContentHash Sha256(const std::string& s) {
  ContentHash h{};
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), h.data(), &len, EVP_sha256(), nullptr);
  return h;
}

struct Normalized {
  Status status;
  NormalizedResource r;
};

Normalized Normalize(const std::string& json) {
  ParsedJson p;
  Normalized out;
  out.status = p.Parse(json);
  if (!out.status.ok()) return out;
  ResourceNormalizer n;
  out.status = n.Normalize(p, p.doc(), &out.r);
  return out;
}

TEST(LoaderNormalizerTest, PutsIdentityAndMetaFirstAndKeepsMemberOrder) {
  Normalized n = Normalize(R"({
      "status": "final",
      "id": "obs-1",
      "meta": {"lastUpdated": "2001-01-01T00:00:00Z", "profile": ["http://p"], "versionId": "9",
               "tag": [{"code": "t"}]},
      "resourceType": "Observation",
      "code": {"text": "x"}
    })");
  ASSERT_TRUE(n.status.ok()) << n.status.ToString();
  EXPECT_EQ(n.r.type, "Observation");
  EXPECT_EQ(n.r.id, "obs-1");
  EXPECT_EQ(AssembleBody(n.r, 3, "2024-06-05T18:00:00.123456Z"),
            R"({"resourceType":"Observation","id":"obs-1","meta":{"versionId":"3",)"
            R"("lastUpdated":"2024-06-05T18:00:00.123456Z","profile":["http://p"],)"
            R"("tag":[{"code":"t"}]},"status":"final","code":{"text":"x"}})");
}

TEST(LoaderNormalizerTest, AddsMetaWhenAbsent) {
  Normalized n = Normalize(R"({"resourceType":"Patient","id":"p1","active":true})");
  ASSERT_TRUE(n.status.ok());
  EXPECT_EQ(AssembleBody(n.r, 1, "2024-01-01T00:00:00Z"),
            R"({"resourceType":"Patient","id":"p1","meta":{"versionId":"1",)"
            R"("lastUpdated":"2024-01-01T00:00:00Z"},"active":true})");
  Normalized bare = Normalize(R"({"resourceType":"Patient","id":"p1"})");
  ASSERT_TRUE(bare.status.ok());
  EXPECT_EQ(AssembleBody(bare.r, 12, "L"),
            R"({"resourceType":"Patient","id":"p1","meta":{"versionId":"12","lastUpdated":"L"}})");
}

TEST(LoaderNormalizerTest, KeepsNumbersAndStringsExactly) {
  Normalized n =
      Normalize(R"({"resourceType":"Observation","id":"o","valueQuantity":{"value":1.50},)"
                R"("x":[1e3,-0,12345678901234567890123,0.30562800211089186,"12"],)"
                R"("s":"a\"b\\c\nd\u0000e\u00e9/\t","u":"é😀"})");
  ASSERT_TRUE(n.status.ok()) << n.status.ToString();
  std::string body = AssembleBody(n.r, 1, "L");
  EXPECT_NE(body.find(R"("value":1.50})"), std::string::npos) << body;
  EXPECT_NE(body.find(R"([1e3,-0,12345678901234567890123,0.30562800211089186,"12"])"),
            std::string::npos)
      << body;
  // Escapes are re-encoded canonically; U+0000 stays escaped (PostgreSQL text cannot hold it).
  EXPECT_NE(body.find(R"("s":"a\"b\\c\nd\u0000e)"), std::string::npos) << body;
  EXPECT_NE(body.find("\"u\":\"é😀\""), std::string::npos) << body;
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_EQ(std::string(d["s"].GetString(), d["s"].GetStringLength()),
            std::string("a\"b\\c\nd\0e\xc3\xa9/\t", 13));
}

TEST(LoaderNormalizerTest, HashIgnoresVersionIdAndLastUpdatedOnly) {
  Normalized a = Normalize(R"({"resourceType":"Patient","id":"p","gender":"male"})");
  Normalized b = Normalize(
      R"({"resourceType":"Patient","meta":{"versionId":"7","lastUpdated":"2020-01-01T00:00:00Z"},)"
      R"("id":"p","gender":"male"})");
  Normalized c =
      Normalize(R"({"resourceType":"Patient","id":"p","meta":{"profile":["x"]},"gender":"male"})");
  Normalized d = Normalize(R"({"resourceType":"Patient","id":"p","gender":"female"})");
  Normalized e = Normalize(R"({"resourceType":"Patient","id":"q","gender":"male"})");
  for (auto* n : {&a, &b, &c, &d, &e}) ASSERT_TRUE(n->status.ok());
  EXPECT_EQ(a.r.hash, b.r.hash);
  EXPECT_NE(a.r.hash, c.r.hash);
  EXPECT_NE(a.r.hash, d.r.hash);
  EXPECT_NE(a.r.hash, e.r.hash);
  // The hash is over the documented text: the compact JSON without versionId and lastUpdated.
  EXPECT_EQ(a.r.hash, Sha256(R"({"resourceType":"Patient","id":"p","gender":"male"})"));
  EXPECT_EQ(
      c.r.hash,
      Sha256(R"({"resourceType":"Patient","id":"p","meta":{"profile":["x"]},"gender":"male"})"));
}

TEST(LoaderNormalizerTest, ReportsTheSourceLastUpdatedWhenValid) {
  auto source = [](const std::string& meta) {
    Normalized n =
        Normalize(R"({"resourceType":"Patient","id":"p","meta":)" + meta + R"(,"gender":"male"})");
    EXPECT_TRUE(n.status.ok()) << meta << ": " << n.status.ToString();
    return n.r.source_last_updated_us;
  };
  const int64_t want = 1425445567123000;  // 2015-03-04T05:06:07.123Z
  EXPECT_EQ(source(R"({"lastUpdated":"2015-03-04T05:06:07.123Z"})"), want);
  EXPECT_EQ(source(R"({"versionId":"3","lastUpdated":"2015-03-04T07:06:07.123+02:00"})"), want);
  EXPECT_EQ(source(R"({"lastUpdated":"2015-03-04T05:06:07.1230009Z"})"), want);  // truncated
  // Missing, malformed, not a string or repeated: none, and the resource still normalizes.
  EXPECT_FALSE(source(R"({"profile":["x"]})"));
  EXPECT_FALSE(source(R"({"lastUpdated":"2015-03-04"})"));
  EXPECT_FALSE(source(R"({"lastUpdated":"2015-02-29T00:00:00Z"})"));
  EXPECT_FALSE(source(R"({"lastUpdated":"yesterday"})"));
  EXPECT_FALSE(source(R"({"lastUpdated":20150304})"));
  EXPECT_FALSE(source(R"({"lastUpdated":null})"));
  EXPECT_FALSE(
      source(R"({"lastUpdated":"2015-03-04T05:06:07Z","lastUpdated":"2016-03-04T05:06:07Z"})"));
  EXPECT_FALSE(source(R"({"lastUpdated":7,"lastUpdated":"2016-03-04T05:06:07Z"})"));
  EXPECT_FALSE(Normalize(R"({"resourceType":"Patient","id":"p"})").r.source_last_updated_us);

  // A normalizer reused for a resource without lastUpdated does not carry the last value over.
  ParsedJson p;
  ResourceNormalizer n;
  NormalizedResource r;
  ASSERT_TRUE(p.Parse(R"({"resourceType":"Patient","id":"a","meta":{"lastUpdated":)"
                      R"("2015-03-04T05:06:07.123Z"}})")
                  .ok());
  ASSERT_TRUE(n.Normalize(p, p.doc(), &r).ok());
  EXPECT_EQ(r.source_last_updated_us, want);
  ASSERT_TRUE(p.Parse(R"({"resourceType":"Patient","id":"b"})").ok());
  ASSERT_TRUE(n.Normalize(p, p.doc(), &r).ok());
  EXPECT_FALSE(r.source_last_updated_us);

  // Still outside the body and the hash.
  Normalized a = Normalize(
      R"({"resourceType":"Patient","id":"p","meta":{"lastUpdated":"2015-03-04T05:06:07.123Z"}})");
  Normalized b = Normalize(R"({"resourceType":"Patient","id":"p"})");
  EXPECT_EQ(a.r.hash, b.r.hash);
  EXPECT_EQ(a.r.tail, b.r.tail);
}

TEST(LoaderNormalizerTest, RejectsWhatCannotBeStored) {
  struct Case {
    const char* json;
    const char* reason;
  } cases[] = {
      {R"([1])", "not a JSON object"},
      {R"({"id":"a"})", "no resourceType"},
      {R"({"resourceType":7,"id":"a"})", "resourceType is not a string"},
      {R"({"resourceType":"Patientx","id":"a"})", "unknown resourceType 'Patientx'"},
      {R"({"resourceType":"Patient"})", "no id"},
      {R"({"resourceType":"Patient","id":12})", "id is not a string"},
      {R"({"resourceType":"Patient","id":"a b"})", "invalid id 'a b'"},
      {R"({"resourceType":"Patient","id":""})", "invalid id"},
      {R"({"resourceType":"Patient","id":"a","meta":[]})", "meta is not an object"},
      {R"({"resourceType":"Patient","id":"a","id":"b"})", "duplicate"},
  };
  for (const Case& c : cases) {
    Normalized n = Normalize(c.json);
    EXPECT_EQ(n.status.code(), Status::Code::kInvalidArgument) << c.json;
    EXPECT_NE(n.status.message().find(c.reason), std::string::npos)
        << c.json << " -> " << n.status.message();
  }
  std::string long_id(65, 'a');
  EXPECT_FALSE(Normalize(R"({"resourceType":"Patient","id":")" + long_id + "\"}").status.ok());
  EXPECT_TRUE(
      Normalize(R"({"resourceType":"Patient","id":")" + long_id.substr(1) + "\"}").status.ok());
  std::string deep = R"({"resourceType":"Patient","id":"a","x":)" + std::string(300, '[') +
                     std::string(300, ']') + "}";
  Normalized d = Normalize(deep);
  EXPECT_FALSE(d.status.ok());
}

TEST(LoaderNormalizerTest, FhirIds) {
  EXPECT_TRUE(IsValidFhirId("6c5d9ca9-54d7-42f5-bfae-a7c19cd217f2"));
  EXPECT_TRUE(IsValidFhirId("A.b-9"));
  EXPECT_FALSE(IsValidFhirId("a/b"));
  EXPECT_FALSE(IsValidFhirId("a_b"));
  EXPECT_FALSE(IsValidFhirId(std::string(65, 'x')));
}

TEST(LoaderParsedJsonTest, TellsNumbersFromStringsAndReportsErrors) {
  ParsedJson p;
  ASSERT_TRUE(p.Parse(R"({"a":12,"b":"12","c":[-1.5e3, "x"]})").ok());
  EXPECT_TRUE(p.IsRawNumber(p.doc()["a"]));
  EXPECT_FALSE(p.IsRawNumber(p.doc()["b"]));
  EXPECT_TRUE(p.IsRawNumber(p.doc()["c"][0]));
  EXPECT_EQ(std::string(p.doc()["c"][0].GetString(), p.doc()["c"][0].GetStringLength()), "-1.5e3");
  EXPECT_FALSE(p.IsRawNumber(p.doc()["c"][1]));
  // A string copied into the document's allocator is a string.
  rapidjson::Value copy("123", p.allocator());
  EXPECT_FALSE(p.IsRawNumber(copy));

  Status s = p.Parse(R"({"a": tru})");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("invalid JSON at byte"), std::string::npos) << s.message();
  EXPECT_FALSE(p.Parse("{\"a\":1} x").ok());           // trailing garbage
  EXPECT_FALSE(p.Parse("{\"a\":\"\xff\xfe\"}").ok());  // not UTF-8
  EXPECT_TRUE(p.Parse("  {\"a\":1}  \n").ok());
  // Hostile nesting neither crashes the parser nor the walks after it: the parse (iterative)
  // stops past kMaxJsonDepth, and what it accepts the walks can take.
  std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  s = p.Parse(deep);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("nested deeper than 200 levels"), std::string::npos) << s.message();
  ResourceNormalizer n;
  NormalizedResource r;
  const std::string at_limit =
      std::string(kMaxJsonDepth - 1, '[') + "1" + std::string(kMaxJsonDepth - 1, ']');
  ASSERT_TRUE(p.Parse(R"({"resourceType":"Basic","id":"b","x":)" + at_limit + "}").ok());
  EXPECT_TRUE(n.Normalize(p, p.doc(), &r).ok());
  EXPECT_FALSE(p.Parse(R"({"resourceType":"Basic","id":"b","x":[)" + at_limit + "]}").ok());
}

TEST(LoaderPgCopyTest, EncodesBinaryFields) {
  std::string out;
  PgCopyEncoder enc(&out);
  enc.TextArray({"ab"});
  // length 26 | ndim 1 | no nulls | oid 25 | dim 1 | lbound 1 | len 2 | "ab"
  const unsigned char expected[] = {0,  0, 0, 26, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,   0,
                                    25, 0, 0, 0,  1, 0, 0, 0, 1, 0, 0, 0, 2, 'a', 'b'};
  EXPECT_EQ(out, std::string(reinterpret_cast<const char*>(expected), sizeof(expected)));
  out.clear();
  enc.TextArray({});
  EXPECT_EQ(out, std::string("\0\0\0\x0c\0\0\0\0\0\0\0\0\0\0\0\x19", 16));
  out.clear();
  enc.TimestampTz(946684800LL * 1000000 + 1);  // 2000-01-01T00:00:00.000001Z: PG epoch + 1
  EXPECT_EQ(out, std::string("\0\0\0\x08\0\0\0\0\0\0\0\x01", 12));
  out.clear();
  enc.TimestampTz(INT64_MAX);  // infinity stays infinity
  EXPECT_EQ(out, std::string("\0\0\0\x08\x7f\xff\xff\xff\xff\xff\xff\xff", 12));
  out.clear();
  enc.BeginText();
  enc.Append("he");
  enc.Append("llo");
  enc.EndText();
  EXPECT_EQ(out, std::string("\0\0\0\x05hello", 9));
}

}  // namespace
}  // namespace fhirbulk
