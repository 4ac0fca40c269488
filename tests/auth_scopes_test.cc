// SMART system scopes: parsing (v1 and v2), every refusal class, intersection with a
// client's pre-authorization, readability and the canonical text.

#include "auth/scopes.h"

#include <gtest/gtest.h>

#include <string>

namespace fhirbulk {
namespace {

ScopeSet MustParse(const std::string& text) {
  auto s = ScopeSet::Parse(text);
  EXPECT_TRUE(s.ok()) << text << ": " << s.status().ToString();
  return s.ok() ? std::move(s).value() : ScopeSet();
}

// The refusal's message; "accepted" when the text parsed.
std::string Refusal(const std::string& text) {
  auto s = ScopeSet::Parse(text);
  if (s.ok()) return "accepted";
  EXPECT_EQ(s.status().code(), Status::Code::kInvalidArgument) << text;
  return s.status().message();
}

std::string Canonical(const std::string& text) { return MustParse(text).ToString(); }

std::string Intersect(const std::string& requested, const std::string& allowed) {
  return ScopeSet::Intersect(MustParse(requested), MustParse(allowed)).ToString();
}

TEST(AuthScopeParseTest, V1Read) {
  ScopeSet s = MustParse("system/Patient.read");
  ASSERT_EQ(s.scopes().size(), 1u);
  EXPECT_EQ(s.scopes()[0].type, "Patient");
  EXPECT_EQ(s.scopes()[0].letters, kScopeRead | kScopeSearch);
  EXPECT_TRUE(s.scopes()[0].v1);
  EXPECT_EQ(s.ToString(), "system/Patient.read");
  EXPECT_EQ(Canonical("system/*.read"), "system/*.read");
}

TEST(AuthScopeParseTest, V2Letters) {
  ScopeSet s = MustParse("system/Patient.rs system/*.r system/Observation.s");
  ASSERT_EQ(s.scopes().size(), 3u);
  EXPECT_EQ(s.scopes()[0].type, "Patient");
  EXPECT_EQ(s.scopes()[0].letters, kScopeRead | kScopeSearch);
  EXPECT_FALSE(s.scopes()[0].v1);
  EXPECT_EQ(s.scopes()[1].type, "*");
  EXPECT_EQ(s.scopes()[1].letters, kScopeRead);
  EXPECT_EQ(s.scopes()[2].type, "Observation");
  EXPECT_EQ(s.scopes()[2].letters, kScopeSearch);
  EXPECT_EQ(s.ToString(), "system/*.r system/Observation.s system/Patient.rs");
}

TEST(AuthScopeParseTest, SpacesAndEmpty) {
  EXPECT_TRUE(MustParse("").empty());
  EXPECT_TRUE(MustParse("   ").empty());
  EXPECT_EQ(Canonical("  system/Patient.rs   system/Group.r  "),
            "system/Group.r system/Patient.rs");
  // Only spaces separate scopes: a tab leaves one (invalid) token.
  EXPECT_NE(Refusal("system/Patient.rs\tsystem/Group.r"), "accepted");
  EXPECT_NE(Refusal("system/Patient.rs\nsystem/Group.r"), "accepted");
}

TEST(AuthScopeParseTest, SameTypeMergesAsAUnion) {
  ScopeSet s = MustParse("system/Patient.r system/Patient.s");
  ASSERT_EQ(s.scopes().size(), 1u);
  EXPECT_EQ(s.ToString(), "system/Patient.rs");
  EXPECT_EQ(Canonical("system/Patient.read system/Patient.read"), "system/Patient.read");
  // Mixed spellings of one type: shown in v2.
  EXPECT_EQ(Canonical("system/Patient.read system/Patient.rs"), "system/Patient.rs");
  EXPECT_EQ(Canonical("system/Patient.r system/Patient.read"), "system/Patient.rs");
  EXPECT_EQ(Canonical("system/*.s system/*.r"), "system/*.rs");
}

TEST(AuthScopeParseTest, RefusesPatientAndUserScopes) {
  for (const char* s :
       {"patient/Patient.read", "patient/*.rs", "user/Observation.rs", "user/*.read"}) {
    EXPECT_EQ(Refusal(s), std::string("scope '") + s +
                              "': only system/ scopes are available to backend services");
  }
}

TEST(AuthScopeParseTest, RefusesV1WriteAndStar) {
  for (const char* s :
       {"system/Patient.write", "system/Patient.*", "system/*.*", "system/*.write"}) {
    EXPECT_EQ(Refusal(s), std::string("scope '") + s +
                              "': write access is not available (this server only exports)");
  }
}

TEST(AuthScopeParseTest, RefusesWriteLetters) {
  for (const char* s : {"system/Patient.c", "system/Patient.u", "system/Patient.d",
                        "system/Patient.cruds", "system/Patient.cud", "system/*.rud",
                        "system/Patient.rd", "system/Patient.cr", "system/Patient.ds"}) {
    EXPECT_EQ(Refusal(s), std::string("scope '") + s +
                              "': write access (c, u, d) is not available (this server only "
                              "exports)");
  }
}

TEST(AuthScopeParseTest, RefusesLettersOutOfOrderOrRepeated) {
  for (const char* s :
       {"system/Patient.sr", "system/Patient.dus", "system/Patient.rsc", "system/Patient.src",
        "system/Patient.rr", "system/Patient.ss", "system/Patient.rrs", "system/Patient.rss",
        "system/Patient.rsr", "system/*.cc"}) {
    EXPECT_EQ(Refusal(s), std::string("scope '") + s +
                              "': permission letters must be a subset of \"cruds\" in that order");
  }
  // ".read" is v1 read, never "r" + "d" (or anything else read loosely).
  EXPECT_EQ(MustParse("system/Patient.read").scopes()[0].letters, kScopeRead | kScopeSearch);
}

TEST(AuthScopeParseTest, RefusesSearchParameterSuffixes) {
  for (const char* s :
       {"system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/"
        "observation-category|laboratory",
        "system/Observation.rs?", "system/*.r?x=1", "system/Observation.read?code=1"}) {
    EXPECT_EQ(Refusal(s), std::string("scope '") + s +
                              "': search-parameter restrictions in scopes are not supported");
  }
}

TEST(AuthScopeParseTest, RefusesUnknownTypes) {
  EXPECT_EQ(Refusal("system/Foo.rs"), "scope 'system/Foo.rs': unknown resource type 'Foo'");
  EXPECT_EQ(Refusal("system/patient.rs"),
            "scope 'system/patient.rs': unknown resource type 'patient'");
  EXPECT_EQ(Refusal("system/.rs"), "scope 'system/.rs': unknown resource type ''");
  EXPECT_EQ(Refusal("system/**.rs"), "scope 'system/**.rs': unknown resource type '**'");
  EXPECT_EQ(Refusal("system/Patient.rs.rs"),
            "scope 'system/Patient.rs.rs': unknown resource type 'Patient.rs'");
}

TEST(AuthScopeParseTest, RefusesGarbage) {
  EXPECT_EQ(Refusal("openid"), "scope 'openid': not a SMART system scope");
  EXPECT_EQ(Refusal("launch/patient"), "scope 'launch/patient': not a SMART system scope");
  EXPECT_EQ(Refusal("System/Patient.rs"), "scope 'System/Patient.rs': not a SMART system scope");
  EXPECT_EQ(Refusal("system/Patient"), "scope 'system/Patient': expected <type>.<permission>");
  EXPECT_EQ(Refusal("system/"), "scope 'system/': expected <type>.<permission>");
  EXPECT_EQ(Refusal("system/Patient."), "scope 'system/Patient.': unknown permission ''");
  EXPECT_EQ(Refusal("system/Patient.READ"),
            "scope 'system/Patient.READ': unknown permission 'READ'");
  EXPECT_EQ(Refusal("system/Patient.rx"), "scope 'system/Patient.rx': unknown permission 'rx'");
  EXPECT_EQ(Refusal("system/Patient.reads"),
            "scope 'system/Patient.reads': unknown permission 'reads'");
  // One bad scope refuses the whole request.
  EXPECT_EQ(Refusal("system/Patient.rs openid"), "scope 'openid': not a SMART system scope");
}

TEST(AuthScopeIntersectTest, WildcardAgainstTypes) {
  EXPECT_EQ(Intersect("system/*.rs", "system/Patient.rs system/Observation.r"),
            "system/Observation.r system/Patient.rs");
  EXPECT_EQ(Intersect("system/Patient.rs", "system/*.r"), "system/Patient.r");
  EXPECT_EQ(Intersect("system/*.rs", "system/*.r"), "system/*.r");
  EXPECT_EQ(Intersect("system/Patient.rs system/Group.r", "system/*.rs"),
            "system/Group.r system/Patient.rs");
}

TEST(AuthScopeIntersectTest, CommonLettersOnly) {
  EXPECT_EQ(Intersect("system/Patient.rs", "system/Patient.s"), "system/Patient.s");
  EXPECT_EQ(Intersect("system/Patient.r", "system/Patient.rs"), "system/Patient.r");
  EXPECT_TRUE(
      ScopeSet::Intersect(MustParse("system/Patient.r"), MustParse("system/Patient.s")).empty());
  EXPECT_TRUE(
      ScopeSet::Intersect(MustParse("system/Patient.rs"), MustParse("system/Group.rs")).empty());
  EXPECT_TRUE(ScopeSet::Intersect(MustParse(""), MustParse("system/*.rs")).empty());
  EXPECT_TRUE(ScopeSet::Intersect(MustParse("system/*.rs"), MustParse("")).empty());
}

TEST(AuthScopeIntersectTest, V1SpellingKeptOnlyWhenWhole) {
  EXPECT_EQ(Intersect("system/Patient.read", "system/*.rs"), "system/Patient.read");
  EXPECT_EQ(Intersect("system/Patient.read", "system/*.read"), "system/Patient.read");
  EXPECT_EQ(Intersect("system/*.read", "system/*.read"), "system/*.read");
  // Cut down to "r": no longer "read".
  EXPECT_EQ(Intersect("system/Patient.read", "system/*.r"), "system/Patient.r");
  EXPECT_EQ(Intersect("system/*.read", "system/Patient.s"), "system/Patient.s");
  // The spelling follows the request, not the pre-authorization.
  EXPECT_EQ(Intersect("system/Patient.rs", "system/*.read"), "system/Patient.rs");
  // Whole again from two allowed entries.
  EXPECT_EQ(Intersect("system/*.read", "system/Patient.r system/Patient.s"), "system/Patient.read");
}

TEST(AuthScopeIntersectTest, DedupesAndDropsWhatTheWildcardCovers) {
  ScopeSet g =
      ScopeSet::Intersect(MustParse("system/*.rs system/Patient.rs"), MustParse("system/*.rs"));
  EXPECT_EQ(g.scopes().size(), 1u);
  EXPECT_EQ(g.ToString(), "system/*.rs");
  // A type entry with a letter the wildcard lacks stays.
  EXPECT_EQ(Intersect("system/*.r system/Patient.rs", "system/*.rs"),
            "system/*.r system/Patient.rs");
  EXPECT_EQ(Intersect("system/*.rs", "system/*.r system/Patient.rs"),
            "system/*.r system/Patient.rs");
  EXPECT_EQ(Intersect("system/*.rs", "system/*.r system/Patient.r"), "system/*.r");
  // One type reached through several pairs: one entry.
  ScopeSet p =
      ScopeSet::Intersect(MustParse("system/*.r system/Patient.s"), MustParse("system/Patient.rs"));
  ASSERT_EQ(p.scopes().size(), 1u);
  EXPECT_EQ(p.ToString(), "system/Patient.rs");
}

TEST(AuthScopeReadTest, CanReadNeedsR) {
  ScopeSet s = MustParse("system/Patient.rs system/Observation.s");
  EXPECT_TRUE(s.CanRead("Patient"));
  EXPECT_FALSE(s.CanRead("Observation"));  // search alone does not allow export
  EXPECT_FALSE(s.CanRead("Group"));
  EXPECT_FALSE(s.CanReadAll());
  EXPECT_FALSE(s.CanRead("*"));

  ScopeSet wild_s = MustParse("system/*.s");
  EXPECT_FALSE(wild_s.CanRead("Patient"));
  EXPECT_FALSE(wild_s.CanReadAll());

  ScopeSet wild_r = MustParse("system/*.r");
  EXPECT_TRUE(wild_r.CanRead("Patient"));
  EXPECT_TRUE(wild_r.CanRead("SomeFutureType"));
  EXPECT_TRUE(wild_r.CanReadAll());

  EXPECT_TRUE(MustParse("system/*.read").CanReadAll());
  EXPECT_TRUE(MustParse("system/Group.read").CanRead("Group"));
  EXPECT_FALSE(ScopeSet().CanRead("Patient"));
  EXPECT_FALSE(ScopeSet().CanReadAll());
}

TEST(AuthScopeFormatTest, CanonicalOrder) {
  EXPECT_EQ(Canonical("system/Observation.r system/*.s system/Condition.rs system/Patient.read"),
            "system/*.s system/Condition.rs system/Observation.r system/Patient.read");
  // Canonical text parses back to itself.
  std::string c = Canonical("system/Observation.r system/*.s system/Condition.rs");
  EXPECT_EQ(Canonical(c), c);
  EXPECT_EQ(ScopeSet().ToString(), "");
}

}  // namespace
}  // namespace fhirbulk
