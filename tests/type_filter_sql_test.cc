#include "export/type_filter_sql.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "export/export_request.h"
#include "fhir/resource_types.h"
#include "fhir/search_params.h"
#include "test_db.h"
#include "util/fhir_time.h"

namespace fhirbulk {
namespace {

using Strings = std::vector<std::string>;

// The _typeFilter queries a system-level POST kick-off with these valueStrings parses into.
std::vector<TypeFilterQuery> Queries(const Strings& filters) {
  std::string body = "{\"resourceType\":\"Parameters\",\"parameter\":[";
  for (size_t i = 0; i < filters.size(); ++i) {
    std::string escaped;
    for (char c : filters[i]) {
      if (c == '"' || c == '\\') escaped.push_back('\\');
      escaped.push_back(c);
    }
    body += (i > 0 ? "," : "") + std::string("{\"name\":\"_typeFilter\",\"valueString\":\"") +
            escaped + "\"}";
  }
  body += "]}";
  HttpRequest r;
  r.method = HttpMethod::kPost;
  r.path = "/$export";
  r.accept = "application/fhir+json";
  r.prefer = "respond-async";
  r.content_type = "application/fhir+json";
  r.body = body;
  ExportParseOptions o;
  o.base_url = "https://ehr.example.org/fhir";
  Result<ExportRequest> e = ParseExportRequest(r, ExportLevel::kSystem, "", o);
  EXPECT_TRUE(e.ok()) << e.status().ToString() << " " << body;
  return e.ok() ? e->type_filters : std::vector<TypeFilterQuery>();
}

struct Sql {
  std::string text;
  Strings params;
};

Sql Translate(const Strings& filters, int first = 1) {
  Sql out;
  Status s = TypeFilterSql(Queries(filters), first, &out.text, &out.params);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

// The highest $n in the SQL, and whether every $first..$max occurs.
bool PlaceholdersAreDense(const std::string& sql, int first, int count) {
  for (int n = first; n < first + count; ++n) {
    const std::string p = "$" + std::to_string(n) + "::";
    if (sql.find(p) == std::string::npos) return false;
  }
  return sql.find("$" + std::to_string(first + count) + "::") == std::string::npos;
}

TEST(TypeFilterSqlTest, TokenValuesAreOneBoundArray) {
  Sql s = Translate({"Observation?code=http://loinc.org|8480-6,8867-4,|x,sys|"}, 3);
  EXPECT_EQ(s.text, "(((tokens IS NOT NULL AND tokens && $3::text[])))");
  EXPECT_EQ(s.params, Strings{"{\"code=http://loinc.org|8480-6\",\"code=8867-4\",\"code=|x\","
                              "\"code=sys|\"}"});
}

TEST(TypeFilterSqlTest, NotAndMissing) {
  Sql s =
      Translate({"Observation?status:not=final,amended&category:missing=true&"
                 "subject:missing=false&date:missing=true"});
  EXPECT_EQ(s.text,
            "((NOT (tokens IS NOT NULL AND tokens && $1::text[]) AND "
            "NOT EXISTS (SELECT 1 FROM unnest(tokens) AS k(v) WHERE starts_with(k.v, $2::text)) "
            "AND EXISTS (SELECT 1 FROM unnest(refs) AS k(v) WHERE starts_with(k.v, $3::text)) "
            "AND NOT EXISTS (SELECT 1 FROM unnest(date_params) AS d(p) WHERE d.p = $4::text)))");
  EXPECT_EQ(s.params,
            (Strings{"{\"status=final\",\"status=amended\"}", "category=", "subject=", "date"}));
}

TEST(TypeFilterSqlTest, ReferencesAndIds) {
  Sql s = Translate({"Observation?subject=Patient/1&patient=7&_id=a,b"});
  EXPECT_EQ(s.text,
            "(((refs IS NOT NULL AND refs && $1::text[]) AND (refs IS NOT NULL AND refs && "
            "$2::text[]) AND (res_id = ANY($3::text[]))))");
  EXPECT_EQ(s.params,
            (Strings{"{\"subject=Patient/1\"}", "{\"patient=Patient/7\"}", "{\"a\",\"b\"}"}));
  // A bare id for a parameter with several target types matches it under each declared R4
  // target type (Observation.subject: Group, Device, Patient, Location), not every type.
  Sql bare = Translate({"Observation?subject=x1"});
  EXPECT_EQ(bare.params, Strings{"{\"subject=Device/x1\",\"subject=Group/x1\","
                                 "\"subject=Location/x1\",\"subject=Patient/x1\"}"});
  // R4 declares "Any" for Basic.subject: there a bare id still means every type.
  Sql any = Translate({"Basic?subject=x1"});
  ASSERT_EQ(any.params.size(), 1u);
  EXPECT_EQ(static_cast<size_t>(std::count(any.params[0].begin(), any.params[0].end(), ',')) + 1,
            R4ResourceTypes().size());
}

TEST(TypeFilterSqlTest, ManyKeysUseAHashedAny) {
  std::string filter = "Observation?code=";
  for (int i = 0; i < 33; ++i) filter += (i > 0 ? ",c" : "c") + std::to_string(i);
  Sql many = Translate({filter});
  EXPECT_EQ(many.text,
            "((EXISTS (SELECT 1 FROM unnest(tokens) AS k(v) WHERE k.v = "
            "ANY($1::text[]))))");
  ASSERT_EQ(many.params.size(), 1u);
  EXPECT_EQ(std::count(many.params[0].begin(), many.params[0].end(), ','), 32);
  // 32 keys: still the GIN-indexable overlap.
  Sql few = Translate({"Observation?subject=a,b,c,d,e,f,g,h"});
  EXPECT_EQ(few.text, "(((refs IS NOT NULL AND refs && $1::text[])))");
}

// The declared R4 targets in the search parameter table: real types, sorted, and Patient
// wherever a parameter puts resources into the Patient compartment.
TEST(TypeFilterSqlTest, ReferenceParametersDeclareTheirR4Targets) {
  size_t references = 0;
  for (const SearchParamDef& def : AllTypeSearchParams()) {
    if (def.kind != SearchParamKind::kReference) {
      EXPECT_TRUE(def.targets.empty()) << def.type << "." << def.code;
      continue;
    }
    ++references;
    const std::vector<std::string_view> types = BareIdTargetTypes(def);
    ASSERT_FALSE(types.empty()) << def.type << "." << def.code;
    EXPECT_TRUE(std::is_sorted(types.begin(), types.end())) << def.type << "." << def.code;
    for (std::string_view t : types) {
      EXPECT_TRUE(IsR4ResourceType(t)) << def.type << "." << def.code << ": '" << t << "'";
    }
    if (!def.target.empty()) {
      EXPECT_EQ(types, std::vector<std::string_view>{def.target});
      EXPECT_NE(def.targets.find(def.target), std::string_view::npos) << def.code;
    }
    if (def.patient_compartment) {
      EXPECT_NE(std::find(types.begin(), types.end(), "Patient"), types.end())
          << def.type << "." << def.code;
    }
  }
  EXPECT_GT(references, 150u);
  const SearchParamDef* subject = FindSearchParam("Observation", "subject");
  ASSERT_NE(subject, nullptr);
  EXPECT_EQ(subject->targets, "Device Group Location Patient");
  const SearchParamDef* performer = FindSearchParam("Observation", "performer");
  ASSERT_NE(performer, nullptr);
  EXPECT_EQ(performer->targets,
            "CareTeam Organization Patient Practitioner PractitionerRole RelatedPerson");
  EXPECT_EQ(FindSearchParam("Encounter", "subject")->targets, "Group Patient");
  EXPECT_TRUE(FindSearchParam("Observation", "code")->targets.empty());
  EXPECT_TRUE(BareIdTargetTypes(*FindSearchParam("Observation", "code")).empty());
}

// The kick-off bounds TypeFilterTermCount, so it must count what TypeFilterSql binds: one
// term per array key, id or date value.
TEST(TypeFilterSqlTest, TermCountMatchesTheCompiledSql) {
  const auto keys = [](const Strings& params) {
    size_t n = 0;
    for (const std::string& p : params) {
      n += p.front() == '{' ? static_cast<size_t>(std::count(p.begin(), p.end(), ',')) + 1 : 1;
    }
    return n;
  };
  for (const char* filter :
       {"Observation?subject=x1", "Observation?subject=x1,Patient/2,x3&code=a,b,c",
        "Observation?patient=1,2", "Observation?_id=a,b", "Basic?subject=x1,x2",
        "Encounter?participant=p1&status=finished", "Observation?_tag=a|b,c|d"}) {
    const std::vector<TypeFilterQuery> queries = Queries({filter});
    ASSERT_EQ(queries.size(), 1u) << filter;
    Sql sql = Translate({filter});
    EXPECT_EQ(TypeFilterTermCount(queries[0]), keys(sql.params)) << filter;
  }
  EXPECT_EQ(TypeFilterTermCount(Queries({"Observation?subject=x1"})[0]), 4u);
  EXPECT_EQ(TypeFilterTermCount(Queries({"Observation?subject=Patient/1"})[0]), 1u);
  EXPECT_EQ(TypeFilterTermCount(Queries({"Observation?"})[0]), 1u);
  EXPECT_EQ(TypeFilterTermCount(Queries({"Observation?date=ge2020,lt2021"})[0]), 2u);
  EXPECT_EQ(TypeFilterTermCount(Queries({"Observation?code:missing=true"})[0]), 1u);
  EXPECT_EQ(TypeFilterTermCount(Queries({"Basic?subject=x1"})[0]), R4ResourceTypes().size());
}

TEST(TypeFilterSqlTest, DatePrefixes) {
  struct Case {
    std::string value;
    std::string condition;  // over d.lo/d.hi with $2.. for the bounds
    Strings bounds;
  };
  const std::string lo = "2023-01-01T00:00:00Z", hi = "2023-01-01T23:59:59.999999Z";
  const std::vector<Case> cases = {
      {"2023-01-01", "(d.lo >= $2::timestamptz AND d.hi <= $3::timestamptz)", {lo, hi}},
      {"eq2023-01-01", "(d.lo >= $2::timestamptz AND d.hi <= $3::timestamptz)", {lo, hi}},
      {"ne2023-01-01", "NOT (d.lo >= $2::timestamptz AND d.hi <= $3::timestamptz)", {lo, hi}},
      {"gt2023-01-01", "(d.hi > $2::timestamptz)", {hi}},
      {"lt2023-01-01", "(d.lo < $2::timestamptz)", {lo}},
      {"ge2023-01-01",
       "(d.hi > $2::timestamptz OR (d.lo >= $3::timestamptz AND d.hi <= $4::timestamptz))",
       {hi, lo, hi}},
      {"le2023-01-01",
       "(d.lo < $2::timestamptz OR (d.lo >= $3::timestamptz AND d.hi <= $4::timestamptz))",
       {lo, lo, hi}},
  };
  for (const Case& c : cases) {
    Sql s = Translate({"Observation?date=" + c.value});
    EXPECT_EQ(s.text,
              "((EXISTS (SELECT 1 FROM unnest(date_params, date_lo, date_hi) AS d(p, lo, hi) "
              "WHERE d.p = $1::text AND (" +
                  c.condition + "))))")
        << c.value;
    Strings expected = {"date"};
    expected.insert(expected.end(), c.bounds.begin(), c.bounds.end());
    EXPECT_EQ(s.params, expected) << c.value;
  }
}

TEST(TypeFilterSqlTest, PartialDatesAndOffsetsBecomeUtcRanges) {
  Sql s = Translate({"Observation?date=2023,2024-02,gt2024-01-01T10:00:00.5+02:00"});
  EXPECT_EQ(s.params, (Strings{"date", "2023-01-01T00:00:00Z", "2023-12-31T23:59:59.999999Z",
                               "2024-02-01T00:00:00Z", "2024-02-29T23:59:59.999999Z",
                               "2024-01-01T08:00:00.500Z"}));
  EXPECT_NE(s.text.find(" OR "), std::string::npos);
}

TEST(TypeFilterSqlTest, LastUpdatedUsesTheColumn) {
  Sql s = Translate({"Observation?_lastUpdated=ge2024-01-01T00:00:00Z"});
  EXPECT_EQ(s.text,
            "((((last_updated > $1::timestamptz OR (last_updated >= $2::timestamptz AND "
            "last_updated <= $3::timestamptz)))))");
  EXPECT_EQ(s.params,
            (Strings{"2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"}));
}

TEST(TypeFilterSqlTest, QueriesOrCriteriaAnd) {
  Sql s = Translate({"Observation?status=final&code=a", "Observation?", "Observation?code=b"}, 5);
  EXPECT_EQ(s.text,
            "(((tokens IS NOT NULL AND tokens && $5::text[]) AND (tokens IS NOT NULL AND tokens "
            "&& $6::text[])) OR TRUE OR ((tokens IS NOT NULL AND tokens && $7::text[])))");
  EXPECT_TRUE(PlaceholdersAreDense(s.text, 5, 3));
}

TEST(TypeFilterSqlTest, ParamsAreAppendedAndNumbered) {
  std::string sql;
  Strings params = {"existing-1", "existing-2"};
  ASSERT_TRUE(
      TypeFilterSql(Queries({"Observation?status=final&date=ge2020&_id=x"}), 3, &sql, &params)
          .ok());
  EXPECT_EQ(params[0], "existing-1");
  EXPECT_EQ(params.size(), 2u + 1 + 4 + 1);
  EXPECT_TRUE(PlaceholdersAreDense(sql, 3, 6)) << sql;
}

TEST(TypeFilterSqlTest, ValuesNeverReachTheSql) {
  const std::string evil = "x'); DROP TABLE resource; --";
  std::vector<TypeFilterQuery> q = {{"Observation", {{"code", "", {evil, "a\"b\\c"}, {}}}}};
  std::string sql;
  Strings params;
  ASSERT_TRUE(TypeFilterSql(q, 1, &sql, &params).ok());
  EXPECT_EQ(sql.find("DROP"), std::string::npos);
  EXPECT_EQ(params, Strings{"{\"code=x'); DROP TABLE resource; --\",\"code=a\\\"b\\\\c\"}"});
}

TEST(TypeFilterSqlTest, EmptyAndErrors) {
  std::string sql;
  Strings params;
  ASSERT_TRUE(TypeFilterSql({}, 1, &sql, &params).ok());
  EXPECT_EQ(sql, "TRUE");
  EXPECT_TRUE(params.empty());

  auto status_of = [](std::vector<TypeFilterQuery> q) {
    std::string s;
    Strings p;
    Status st = TypeFilterSql(q, 1, &s, &p);
    EXPECT_TRUE(p.empty()) << "params must stay untouched on error";
    return st.code();
  };
  using C = Status::Code;
  EXPECT_EQ(status_of({{"Observation", {}}, {"Condition", {}}}), C::kInvalidArgument);
  EXPECT_EQ(status_of({{"Observation", {{"foo", "", {"x"}, {}}}}}), C::kNotSupported);
  EXPECT_EQ(status_of({{"Observation", {{"code", "", {}, {}}}}}), C::kInvalidArgument);
  EXPECT_EQ(status_of({{"Observation", {{"code", "text", {"x"}, {}}}}}), C::kNotSupported);
  EXPECT_EQ(status_of({{"Observation", {{"subject", "not", {"Patient/1"}, {}}}}}),
            C::kNotSupported);
  EXPECT_EQ(status_of({{"Observation", {{"code", "missing", {"maybe"}, {}}}}}),
            C::kInvalidArgument);
  EXPECT_EQ(status_of({{"Observation", {{"date", "", {"2023-13"}, {"eq"}}}}}), C::kInvalidArgument);
  EXPECT_EQ(status_of({{"Observation", {{"date", "", {"2023"}, {"sa"}}}}}), C::kNotSupported);
  EXPECT_EQ(status_of({{"Observation", {{"date", "", {"2023", "2024"}, {"eq"}}}}}),
            C::kInvalidArgument);
  // Missing prefixes mean eq (hand-built queries).
  EXPECT_TRUE(
      TypeFilterSql({{"Observation", {{"date", "", {"2023"}, {}}}}}, 1, &sql, &params).ok());
}

TEST(TypeFilterSqlTest, Helpers) {
  EXPECT_EQ(PgTextArrayLiteral({}), "{}");
  EXPECT_EQ(PgTextArrayLiteral({"a", "b,c", "{d}", "e\"f", "g\\h", "NULL", ""}),
            "{\"a\",\"b,c\",\"{d}\",\"e\\\"f\",\"g\\\\h\",\"NULL\",\"\"}");
  EXPECT_EQ(PgTimestampParam(std::numeric_limits<int64_t>::min()), "-infinity");
  EXPECT_EQ(PgTimestampParam(std::numeric_limits<int64_t>::max()), "infinity");
  EXPECT_EQ(PgTimestampParam(0), "1970-01-01T00:00:00Z");
  std::vector<TypeFilterQuery> all = {{"A", {}}, {"B", {}}, {"A", {{"x", "", {"1"}, {}}}}};
  std::vector<TypeFilterQuery> a = TypeFilterQueriesFor(all, "A");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1].criteria.size(), 1u);
  EXPECT_TRUE(TypeFilterQueriesFor(all, "C").empty());
}

// ---------------------------------------------------------------------------------------------
// Against PostgreSQL: hand-made rows with the index columns set directly, and which of them
// each filter selects.

class TypeFilterDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FHIRBULK_REQUIRE_TEST_DB();
    conn_ = ConnectTestDb();
    ASSERT_NE(conn_, nullptr);
    prefix_ = "tfsql-" + std::to_string(getpid()) + "-" + std::to_string(NowMicros()) + "-";
    Cleanup();
    using P = std::optional<std::string>;
    const P none;
    // id, last_updated, tokens, refs, date_params, date_lo, date_hi
    Insert("o1", "2024-01-10T00:00:00Z",
           P("{code=8480-6,code=http://loinc.org|8480-6,code=http://loinc.org|,status=final,"
             "status=|final,category=vital-signs,category=http://obs-cat|vital-signs,"
             "category=http://obs-cat|}"),
           P("{subject=Patient/p1,patient=Patient/p1}"), P("{date}"), P("{2023-01-15T10:00:00Z}"),
           P("{2023-01-15T10:00:00Z}"));
    Insert("o2", "2024-02-10T00:00:00Z",
           P("{code=8867-4,code=http://loinc.org|8867-4,code=http://loinc.org|,status=amended,"
             "status=|amended,category=laboratory,category=http://obs-cat|laboratory,"
             "category=http://obs-cat|}"),
           P("{subject=Patient/p2,patient=Patient/p2}"), P("{date}"), P("{2022-06-01T00:00:00Z}"),
           P("{2022-06-01T23:59:59.999999Z}"));
    Insert("o3", "2024-03-10T00:00:00Z",
           P("{code=xyz,code=|xyz,status=preliminary,status=|preliminary}"),
           P("{subject=Group/p1}"), P("{date}"), P("{2023-01-01T00:00:00Z}"), P("{infinity}"));
    Insert("o4", "2024-04-10T00:00:00Z", none, none, none, none, none);
    Insert("o5", "2024-05-10T00:00:00Z",
           P("{code=123,code=http://snomed.info/sct|123,code=http://snomed.info/sct|,"
             "status=final,status=|final}"),
           P("{subject=Patient/p1,patient=Patient/p1}"), P("{date,date}"),
           P("{2022-12-01T00:00:00Z,1999-01-01T00:00:00Z}"),
           P("{2023-01-01T12:00:00Z,1999-01-01T00:00:00Z}"));
  }

  void TearDown() override {
    if (conn_ != nullptr) Cleanup();
  }

  void Cleanup() {
    auto r = conn_->Exec("DELETE FROM resource WHERE starts_with(res_id, $1)", {prefix_});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  void Insert(const std::string& id, const std::string& last_updated,
              const std::optional<std::string>& tokens, const std::optional<std::string>& refs,
              const std::optional<std::string>& date_params,
              const std::optional<std::string>& date_lo,
              const std::optional<std::string>& date_hi) {
    const std::string res_id = prefix_ + id;
    auto param = [](const std::optional<std::string>& v) -> PgParam {
      return v ? PgParam(*v) : PgParam();
    };
    auto r = conn_->Exec(
        "INSERT INTO resource (res_type, res_id, version, last_updated, body, tokens, refs, "
        "date_params, date_lo, date_hi) VALUES ('Observation', $1, 1, $2::timestamptz, '{}', "
        "$3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[])",
        {res_id, last_updated, param(tokens), param(refs), param(date_params), param(date_lo),
         param(date_hi)});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  // The short ids ("o1", ...) of the rows the filters select, sorted.
  Strings Select(const Strings& filters) {
    std::string expr;
    Strings params = {prefix_};
    Status s = TypeFilterSql(Queries(filters), 2, &expr, &params);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return {"<error>"};
    std::vector<PgParam> pg(params.begin(), params.end());
    auto r = conn_->Exec(
        "SELECT res_id FROM resource WHERE res_type = 'Observation' AND "
        "starts_with(res_id, $1) AND " +
            expr + " ORDER BY res_id",
        pg);
    EXPECT_TRUE(r.ok()) << r.status().ToString() << "\n" << expr;
    if (!r.ok()) return {"<error>"};
    Strings ids;
    for (int i = 0; i < r->rows(); ++i) ids.push_back(r->str(i, 0).substr(prefix_.size()));
    // Literal mode (the worker's COPY) compiles the same expression with quoted values: it
    // must select the same rows.
    EXPECT_EQ(SelectLiteral(Queries(filters)), ids) << expr;
    return ids;
  }

  // The rows literal mode's expression selects (no parameters at all).
  Strings SelectLiteral(const std::vector<TypeFilterQuery>& queries) {
    std::string expr;
    Status s = TypeFilterSqlLiteral(queries, conn_.get(), &expr);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return {"<error>"};
    EXPECT_FALSE(std::regex_search(expr, std::regex("\\$[0-9]+::"))) << expr;  // no placeholder
    auto r = conn_->Exec(
        "SELECT res_id FROM resource WHERE res_type = 'Observation' AND starts_with(res_id, " +
        conn_->QuoteLiteral(prefix_) + ") AND " + expr + " ORDER BY res_id");
    EXPECT_TRUE(r.ok()) << r.status().ToString() << "\n" << expr;
    if (!r.ok()) return {"<error>"};
    Strings ids;
    for (int i = 0; i < r->rows(); ++i) ids.push_back(r->str(i, 0).substr(prefix_.size()));
    return ids;
  }

  std::unique_ptr<PgConnection> conn_;
  std::string prefix_;
};

TEST_F(TypeFilterDbTest, Tokens) {
  EXPECT_EQ(Select({"Observation?code=http://loinc.org|8480-6"}), Strings{"o1"});
  EXPECT_EQ(Select({"Observation?code=8480-6"}), Strings{"o1"});
  EXPECT_EQ(Select({"Observation?code=http://loinc.org|"}), (Strings{"o1", "o2"}));
  EXPECT_EQ(Select({"Observation?code=|xyz"}), Strings{"o3"});
  EXPECT_EQ(Select({"Observation?code=|8480-6"}), Strings{});  // has a system
  EXPECT_EQ(Select({"Observation?code=xyz"}), Strings{"o3"});
  EXPECT_EQ(Select({"Observation?status=final,amended"}), (Strings{"o1", "o2", "o5"}));
  EXPECT_EQ(Select({"Observation?category=http://obs-cat|laboratory"}), Strings{"o2"});
}

TEST_F(TypeFilterDbTest, NotAndMissing) {
  // :not also selects rows without any status (o4 has no tokens at all).
  EXPECT_EQ(Select({"Observation?status:not=final"}), (Strings{"o2", "o3", "o4"}));
  EXPECT_EQ(Select({"Observation?status:not=final,amended"}), (Strings{"o3", "o4"}));
  EXPECT_EQ(Select({"Observation?category:missing=true"}), (Strings{"o3", "o4", "o5"}));
  EXPECT_EQ(Select({"Observation?category:missing=false"}), (Strings{"o1", "o2"}));
  EXPECT_EQ(Select({"Observation?date:missing=true"}), Strings{"o4"});
  EXPECT_EQ(Select({"Observation?subject:missing=false"}), (Strings{"o1", "o2", "o3", "o5"}));
}

TEST_F(TypeFilterDbTest, References) {
  EXPECT_EQ(Select({"Observation?subject=Patient/p1"}), (Strings{"o1", "o5"}));
  // A bare id on a multi-target parameter matches its declared target types (o3's subject is
  // a Group); on `patient` it means Patient.
  EXPECT_EQ(Select({"Observation?subject=p1"}), (Strings{"o1", "o3", "o5"}));
  EXPECT_EQ(Select({"Observation?patient=p1"}), (Strings{"o1", "o5"}));
  EXPECT_EQ(Select({"Observation?subject:Group=p1"}), Strings{"o3"});
  EXPECT_EQ(Select({"Observation?subject=https://ehr.example.org/fhir/Patient/p2"}), Strings{"o2"});
  EXPECT_EQ(Select({"Observation?subject=Patient/p1,Patient/p2"}), (Strings{"o1", "o2", "o5"}));
}

// More than 32 keys use the hashed = ANY form; it selects what && would, also under :not.
TEST_F(TypeFilterDbTest, ManyKeysSelectTheSameRows) {
  std::string subjects = "Observation?subject=";
  std::string statuses = "Observation?status:not=";
  for (int i = 0; i < 40; ++i) {
    subjects += "q" + std::to_string(i) + ",";
    statuses += "s" + std::to_string(i) + ",";
  }
  EXPECT_EQ(Select({subjects + "p1"}), (Strings{"o1", "o3", "o5"}));
  EXPECT_EQ(Select({subjects + "Patient/p2"}), Strings{"o2"});
  EXPECT_EQ(Select({statuses + "final"}), (Strings{"o2", "o3", "o4"}));
  EXPECT_EQ(Select({statuses + "final,amended"}), (Strings{"o3", "o4"}));
}

TEST_F(TypeFilterDbTest, IdsAndLastUpdated) {
  EXPECT_EQ(Select({"Observation?_id=" + prefix_ + "o1," + prefix_ + "o3"}), (Strings{"o1", "o3"}));
  EXPECT_EQ(Select({"Observation?_lastUpdated=gt2024-03-01"}), (Strings{"o3", "o4", "o5"}));
  EXPECT_EQ(Select({"Observation?_lastUpdated=lt2024-02-10"}), Strings{"o1"});
  EXPECT_EQ(Select({"Observation?_lastUpdated=le2024-02-10"}), (Strings{"o1", "o2"}));
  EXPECT_EQ(Select({"Observation?_lastUpdated=ge2024-04-10"}), (Strings{"o4", "o5"}));
  EXPECT_EQ(Select({"Observation?_lastUpdated=2024-02"}), Strings{"o2"});
  EXPECT_EQ(Select({"Observation?_lastUpdated=ne2024-02"}), (Strings{"o1", "o3", "o4", "o5"}));
  EXPECT_EQ(Select({"Observation?_lastUpdated=2024-02-10T01:00:00+01:00"}), Strings{"o2"});
}

TEST_F(TypeFilterDbTest, DatePrefixesPartialDatesAndPeriods) {
  // o1 point 2023-01-15T10:00Z; o2 the day 2022-06-01; o3 from 2023-01-01 on (open end);
  // o4 no date; o5 [2022-12-01, 2023-01-01T12:00Z] and the instant 1999-01-01T00:00Z.
  EXPECT_EQ(Select({"Observation?date=2023-01"}), Strings{"o1"});
  EXPECT_EQ(Select({"Observation?date=2022"}), Strings{"o2"});
  EXPECT_EQ(Select({"Observation?date=1999"}), Strings{"o5"});
  EXPECT_EQ(Select({"Observation?date=2022,2023-01"}), (Strings{"o1", "o2"}));
  EXPECT_EQ(Select({"Observation?date=2023-01-15T12:00:00+02:00"}), Strings{"o1"});
  EXPECT_EQ(Select({"Observation?date=2023-01-15T10:00:00.000001Z"}), Strings{});
  // gt: some of the value lies after the search range; o5 ends inside 2023-01-01.
  EXPECT_EQ(Select({"Observation?date=gt2023-01-01"}), (Strings{"o1", "o3"}));
  // ge = gt or eq (FHIR R4): o5 overlaps the day but is neither after it nor inside it.
  EXPECT_EQ(Select({"Observation?date=ge2023-01-01"}), (Strings{"o1", "o3"}));
  EXPECT_EQ(Select({"Observation?date=ge2023-01-15T10:00:00Z"}), (Strings{"o1", "o3"}));
  EXPECT_EQ(Select({"Observation?date=lt2023-01-01"}), (Strings{"o2", "o5"}));
  EXPECT_EQ(Select({"Observation?date=le2022-06-01"}), (Strings{"o2", "o5"}));
  EXPECT_EQ(Select({"Observation?date=lt2022-06-01"}), Strings{"o5"});
  // ne: a value not inside the range; rows without a date never match.
  EXPECT_EQ(Select({"Observation?date=ne2023-01"}), (Strings{"o2", "o3", "o5"}));
  EXPECT_EQ(Select({"Observation?date=ne1999"}), (Strings{"o1", "o2", "o3", "o5"}));
}

TEST_F(TypeFilterDbTest, AndOrAndEmpty) {
  EXPECT_EQ(Select({"Observation?status=final&date=ge2023-01-01"}), Strings{"o1"});
  EXPECT_EQ(Select({"Observation?status=final&subject=Patient/p1&code=123"}), Strings{"o5"});
  EXPECT_EQ(Select({"Observation?status=amended", "Observation?code=xyz"}), (Strings{"o2", "o3"}));
  EXPECT_EQ(Select({"Observation?status=amended", "Observation?"}),
            (Strings{"o1", "o2", "o3", "o4", "o5"}));
  EXPECT_EQ(Select({"Observation?status=final&status:not=final"}), Strings{});
  // The digest's example filters.
  EXPECT_EQ(Select({"Observation?category=laboratory",
                    "Observation?category=vital-signs&date=ge2023-01-01"}),
            (Strings{"o1", "o2"}));
}

// Values that would break out of a literal or look like placeholders are data in both modes:
// they select nothing (no such ids), and the statement still runs. This is the guard against
// SQL injection through _typeFilter values now that the worker's COPY carries them as literals.
TEST_F(TypeFilterDbTest, HostileValuesStayData) {
  for (const char* v :
       {"x')) OR TRUE --", "x\\')) OR TRUE --", "$1", "\\\\", "''", "a\"b", "{x}", "x,y"}) {
    std::vector<TypeFilterQuery> q = {{"Observation", {{"_id", "", {v}, {}}}}};
    EXPECT_EQ(SelectLiteral(q), Strings{}) << v;
    q = {{"Observation", {{"code", "", {v}, {}}}}};
    EXPECT_EQ(SelectLiteral(q), Strings{}) << v;
  }
  // ... and a quote inside a real value matches it exactly.
  std::vector<TypeFilterQuery> q = {{"Observation", {{"_id", "", {prefix_ + "o1"}, {}}}}};
  EXPECT_EQ(SelectLiteral(q), Strings{"o1"});
}

std::vector<TypeFilterQuery> NulQuery() {
  return {{"Observation", {{"_id", "", {std::string("o1\0' OR TRUE --", 15)}, {}}}}};
}

// libpq takes text up to the first NUL: such a value would be cut, so it is refused.
TEST(TypeFilterSqlTest, NulBytesAreRefused) {
  std::string sql;
  Strings params;
  EXPECT_EQ(TypeFilterSql(NulQuery(), 1, &sql, &params).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(params.empty());
}

TEST_F(TypeFilterDbTest, NulBytesAreRefusedInLiteralMode) {
  std::string sql;
  EXPECT_EQ(TypeFilterSqlLiteral(NulQuery(), conn_.get(), &sql).code(),
            Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace fhirbulk
