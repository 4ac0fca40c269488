// The Group API's pure pieces (issue 14): Group write scopes (only on Group, only as
// registered), and member-filter expressions compiled into the cohort query.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "auth/scopes.h"
#include "export/cohort.h"
#include "server/routes.h"

namespace fhirbulk {
namespace {

std::string Canonical(const std::string& text) {
  auto s = ScopeSet::Parse(text);
  return s.ok() ? s->ToString() : "refused: " + s.status().message();
}

TEST(GroupScopesTest, WriteLettersOnlyOnGroup) {
  EXPECT_EQ(Canonical("system/Group.cud"), "system/Group.cud");
  EXPECT_EQ(Canonical("system/Group.cruds"), "system/Group.cruds");
  EXPECT_EQ(Canonical("system/Group.c"), "system/Group.c");
  EXPECT_EQ(Canonical("system/Group.write"), "system/Group.write");
  EXPECT_EQ(Canonical("system/Group.read system/Group.write"),
            "system/Group.read system/Group.write");
  for (const char* refused :
       {"system/*.cud", "system/*.write", "system/Patient.cud", "system/Observation.write",
        "system/Group.*", "system/Group.dc", "system/Group.cc"}) {
    EXPECT_EQ(Canonical(refused).rfind("refused: ", 0), 0u) << refused;
  }
}

TEST(GroupScopesTest, GrantsAndIntersection) {
  auto allowed = ScopeSet::Parse("system/*.read system/Group.cud").value();
  auto asked = ScopeSet::Parse("system/*.rs system/Group.cruds").value();
  ScopeSet granted = ScopeSet::Intersect(asked, allowed);
  // Group keeps every letter it was granted (r and s also come from "*").
  EXPECT_EQ(granted.ToString(), "system/*.rs system/Group.cruds");
  EXPECT_TRUE(granted.Grants("Group", kScopeCreate | kScopeDelete));
  EXPECT_TRUE(granted.Grants("Group", kScopeRead | kScopeSearch));
  EXPECT_FALSE(granted.Grants("Patient", kScopeCreate));
  // A client registered for reading only gets no write letter.
  auto reader = ScopeSet::Parse("system/*.read").value();
  ScopeSet none = ScopeSet::Intersect(ScopeSet::Parse("system/Group.cud").value(), reader);
  EXPECT_TRUE(none.empty());
  EXPECT_FALSE(reader.Grants("Group", kScopeUpdate));
  EXPECT_TRUE(ScopeSet::Parse("system/Group.r").value().Grants("Group", kScopeRead));
  EXPECT_FALSE(ScopeSet::Parse("system/Group.r").value().Grants("Group", kScopeSearch));
}

TEST(GroupRoutesTest, GroupPaths) {
  EXPECT_EQ(MatchRoute("/Group").kind, Route::kGroupType);
  Route r = MatchRoute("/Group/abc.1-2");
  EXPECT_EQ(r.kind, Route::kGroupInstance);
  EXPECT_EQ(r.group_id, "abc.1-2");
  EXPECT_EQ(MatchRoute("/Group/abc/$export").kind, Route::kExportKickoff);
  EXPECT_EQ(MatchRoute("/Group/a/b").kind, Route::kNotFound);
  EXPECT_EQ(MatchRoute("/Group/").kind, Route::kNotFound);
  r = MatchRoute("/$group-status/xyz");
  EXPECT_EQ(r.kind, Route::kGroupStatus);
  EXPECT_EQ(r.job_id, "xyz");
  EXPECT_EQ(MatchRoute("/$group-status/a/b").kind, Route::kNotFound);
}

Result<CohortFilter> Parse(const std::string& e) {
  return ParseMemberFilter(e, "http://h/fhir", KickoffLimits());
}

TEST(CohortTest, ParsesFilters) {
  auto f = Parse("Condition?code=http://snomed.info/sct|44054006");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->query.type, "Condition");
  ASSERT_EQ(f->query.criteria.size(), 1u);
  EXPECT_EQ(f->query.criteria[0].param, "code");
  f = Parse("Encounter?class=AMB&date=ge2024-01-01");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->query.criteria.size(), 2u);
  f = Parse("Patient?birthdate=le1960-01-01&gender=female");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
}

TEST(CohortTest, RefusesWhatItCannotEvaluate) {
  struct Case {
    const char* expr;
    Status::Code code;
    const char* names;
  } cases[] = {
      {"Condition?foo=1", Status::Code::kNotSupported, "foo"},
      {"Condition?code=x&_sort=date", Status::Code::kNotSupported, "_sort"},
      {"Practitioner?name=x", Status::Code::kInvalidArgument, "compartment"},
      {"Nope?x=1", Status::Code::kNotSupported, "Nope"},
      {"code=x", Status::Code::kInvalidArgument, "Type?param=value"},
      {"Condition?code=x,Observation?code=y", Status::Code::kInvalidArgument, "one search"},
      {"Encounter?date=yesterday", Status::Code::kInvalidArgument, "date"},
  };
  for (const Case& c : cases) {
    auto f = Parse(c.expr);
    ASSERT_FALSE(f.ok()) << c.expr;
    EXPECT_EQ(f.status().code(), c.code) << c.expr << ": " << f.status().ToString();
    EXPECT_NE(f.status().message().find(c.names), std::string::npos) << f.status().message();
    EXPECT_EQ(f.status().message().rfind("member-filter '", 0), 0u) << f.status().message();
  }
}

TEST(CohortTest, SqlIntersectsBoundFilters) {
  std::vector<CohortFilter> filters = {Parse("Condition?code=http://snomed.info/sct|1").value(),
                                       Parse("Patient?gender=female").value()};
  std::string sql;
  std::vector<std::string> params;
  ASSERT_TRUE(CohortSql(filters, nullptr, &sql, &params).ok());
  EXPECT_NE(sql.find("res_type = 'Condition'"), std::string::npos) << sql;
  EXPECT_NE(sql.find(" INTERSECT "), std::string::npos) << sql;
  EXPECT_NE(sql.find("r.res_type = 'Patient'"), std::string::npos) << sql;
  EXPECT_EQ(sql.find("snomed"), std::string::npos) << "values are bound, never spliced";
  EXPECT_EQ(params.size(), 2u);
  std::vector<std::string> candidates = {"a", "b"};
  params.clear();
  ASSERT_TRUE(CohortSql(filters, &candidates, &sql, &params).ok());
  EXPECT_EQ(params.back(), "{\"a\",\"b\"}");
  EXPECT_NE(sql.find("= ANY($3::text[])"), std::string::npos) << sql;
  EXPECT_FALSE(CohortSql({}, nullptr, &sql, &params).ok());
}

TEST(CohortTest, AsOfAndDateHull) {
  std::vector<CohortFilter> filters = {
      Parse("Encounter?date=ge2024-01-01&date=lt2025-01-01").value(),
      Parse("Patient?gender=female").value()};
  std::string sql;
  std::vector<std::string> params;
  ASSERT_TRUE(CohortSql(filters, nullptr, &sql, &params, int64_t{1700000000000000}).ok());
  ASSERT_FALSE(params.empty());
  EXPECT_EQ(params[0], "1700000000000000") << "the instant is $1";
  // Both the filtered types and the Patient existence check read as of the instant.
  size_t history = 0;
  for (size_t at = 0; (at = sql.find("FROM resource_history", at)) != std::string::npos; at++) {
    history++;
  }
  EXPECT_EQ(history, 3u) << sql;
  // One hull condition per bounded date criterion, on the indexed type only.
  size_t hulls = 0;
  for (size_t at = 0; (at = sql.find("fhirbulk_date_hull(", at)) != std::string::npos; at++) {
    hulls++;
  }
  EXPECT_EQ(hulls, 2u) << sql;
  EXPECT_NE(std::find(params.begin(), params.end(), "2024-01-01T00:00:00Z"), params.end());
  EXPECT_NE(std::find(params.begin(), params.end(), "infinity"), params.end());
  EXPECT_NE(std::find(params.begin(), params.end(), "-infinity"), params.end());
  // ne has no bound: no hull condition; nor without an instant any history.
  params.clear();
  ASSERT_TRUE(CohortSql({Parse("Encounter?date=ne2024").value()}, nullptr, &sql, &params).ok());
  EXPECT_EQ(sql.find("fhirbulk_date_hull("), std::string::npos) << sql;
  EXPECT_EQ(sql.find("resource_history"), std::string::npos) << sql;
}

}  // namespace
}  // namespace fhirbulk
