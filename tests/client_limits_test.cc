// What a server's answers can make the client hold or do: response bodies kept in memory
// (HttpClient caps), manifests (size, file count, nesting), OperationOutcomes and NDJSON lines
// (length, nesting). Over a limit: a clear error, never unbounded memory or a crash.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <string>
#include <thread>

#include "client/bounded_json.h"
#include "client/http_client.h"
#include "client/http_status.h"
#include "client/manifest.h"
#include "client/ndjson_validator.h"
#include "scripted_server.h"

namespace fhirbulk {
namespace client {
namespace {

std::string Nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// --- JSON --------------------------------------------------------------------------------

TEST(ClientLimitsTest, BoundedJsonRefusesDeepNestingWithoutRecursing) {
  rapidjson::Document doc;
  std::string error;
  // ~1 MB of brackets: RapidJSON's default recursive parse overflows the stack on this.
  EXPECT_FALSE(ParseBoundedJson(Nested(500000), &doc, kMaxJsonDepth, &error));
  EXPECT_EQ(error, "nested deeper than 100 levels");
  EXPECT_TRUE(doc.IsNull());
  EXPECT_TRUE(ParseBoundedJson(Nested(100), &doc));
  EXPECT_FALSE(ParseBoundedJson(Nested(101), &doc));
  EXPECT_TRUE(ParseBoundedJson(R"( {"a":[1,{"b":"c"}]} )", &doc));
  EXPECT_EQ(doc["a"][1]["b"], "c");
  EXPECT_FALSE(ParseBoundedJson(R"({"a":1} x)", &doc, kMaxJsonDepth, &error));
  EXPECT_FALSE(ParseBoundedJson(std::string("{}\0{}", 5), &doc));
  EXPECT_FALSE(ParseBoundedJson("{\"a\":\"\xC3\x28\"}", &doc));  // invalid UTF-8
  EXPECT_FALSE(ParseBoundedJson("", &doc));
}

TEST(ClientLimitsTest, OutcomesNestedDeeplyAreNotOutcomes) {
  const std::string deep =
      R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient","x":)" +
      Nested(400000) + "}]}";
  EXPECT_EQ(OutcomeText(deep), "");
  EXPECT_FALSE(IsTransientOutcome(deep));
  EXPECT_EQ(HttpStatusToStatus(503, "status", Nested(400000)).code(), Status::Code::kUnavailable);
}

// --- manifests ---------------------------------------------------------------------------

std::string ManifestWith(int outputs, const std::string& extra = "") {
  std::string m = R"({"transactionTime":"2024-01-01T00:00:00Z","requiresAccessToken":true,)"
                  R"("output":[)";
  for (int i = 0; i < outputs; i++) {
    m += (i ? "," : "") + std::string(R"({"type":"Patient","url":"https://x/f)") +
         std::to_string(i) + "\"}";
  }
  return m + "]" + extra + "}";
}

TEST(ClientLimitsTest, ManifestSizeFileCountAndNestingAreBounded) {
  ManifestLimits limits;
  limits.max_files = 5;
  ASSERT_TRUE(ParseManifest(ManifestWith(5), limits).ok());
  auto r = ParseManifest(ManifestWith(6), limits);
  EXPECT_EQ(r.status().code(), Status::Code::kResourceExhausted);
  EXPECT_NE(r.status().message().find("more than 5 files (--max-manifest-files)"),
            std::string::npos)
      << r.status().ToString();
  // output, deleted and error count together
  r = ParseManifest(ManifestWith(4, R"(,"error":[{"type":"OperationOutcome","url":"https://x/e"},)"
                                    R"({"type":"OperationOutcome","url":"https://x/e2"}])"),
                    limits);
  EXPECT_EQ(r.status().code(), Status::Code::kResourceExhausted);

  limits = ManifestLimits();
  limits.max_bytes = 100;
  r = ParseManifest(ManifestWith(5), limits);
  EXPECT_EQ(r.status().code(), Status::Code::kResourceExhausted);
  EXPECT_NE(r.status().message().find("larger than 100 bytes (--max-manifest-bytes)"),
            std::string::npos);

  r = ParseManifest(ManifestWith(1, R"(,"extension":)" + Nested(500000)));
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  EXPECT_NE(r.status().message().find("nested deeper"), std::string::npos) << r.status().ToString();
}

// --- NDJSON ------------------------------------------------------------------------------

TEST(ClientLimitsTest, NdjsonLineOverTheLimitIsAnIssueAndIsNotBuffered) {
  const std::string good = R"({"resourceType":"Patient","id":"p"})";
  const std::string big = R"({"resourceType":"Patient","text":")" + std::string(3000, 'x') + "\"}";
  NdjsonValidator v("Patient", 4, 20, 1000);
  // Byte by byte too, so the limit holds across chunks.
  const std::string file = good + "\n" + big + "\n" + good + "\n" + big;
  for (char c : file) v.Feed(std::string_view(&c, 1));
  v.Finish();
  EXPECT_EQ(v.lines(), 4);
  EXPECT_EQ(v.good_lines(), 2);
  ASSERT_EQ(v.issues().size(), 2u);
  EXPECT_EQ(v.issues()[0].line, 2);
  EXPECT_EQ(v.issues()[0].message, "line longer than 1000 bytes (3036; --max-line-bytes)");
  EXPECT_EQ(v.issues()[1].line, 4);

  NdjsonValidator whole("Patient", std::nullopt, 20, 1000);
  whole.Feed(file);  // in one chunk
  whole.Finish();
  EXPECT_EQ(whole.lines(), 4);
  EXPECT_EQ(whole.good_lines(), 2);
  EXPECT_EQ(whole.error_count(), 2);
}

TEST(ClientLimitsTest, NdjsonDeepNestingIsInvalidJsonNotACrash) {
  NdjsonValidator v("Patient", 2);
  v.Feed(R"({"resourceType":"Patient","x":)" + Nested(500000) + "}\n");
  v.Feed(R"({"resourceType":"Patient","x":)" + Nested(98) + "}\n");
  v.Finish();
  EXPECT_EQ(v.good_lines(), 1);
  ASSERT_EQ(v.issues().size(), 1u);
  EXPECT_EQ(v.issues()[0].message, "invalid JSON: nested deeper than 100 levels");

  NdjsonValidator outcomes("OperationOutcome", 1);
  outcomes.Feed(R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","x":)" +
                Nested(96) + "}]}\n");
  outcomes.Finish();
  EXPECT_EQ(outcomes.good_lines(), 1);
}

// --- HTTP bodies ---------------------------------------------------------------------------

std::string HttpResponse(int code, const std::string& body, const std::string& headers = "") {
  return "HTTP/1.1 " + std::to_string(code) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n" +
         headers + "\r\n" + body;
}

std::string Gzip(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(&out[0]);
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

TEST(ClientLimitsTest, FetchCapsSuccessBodiesAndCutsErrorBodies) {
  const std::string two_mib(2u << 20, 'a');
  HttpOptions options;
  options.connect_timeout_seconds = 5;
  {
    ScriptedServer server({HttpResponse(200, two_mib)});
    HttpClient http(options);
    Request req;
    req.url = server.url("/x");
    auto res = http.Fetch(req);  // the default: 1 MiB
    EXPECT_EQ(res.status().code(), Status::Code::kResourceExhausted) << res.status().ToString();
    EXPECT_NE(res.status().message().find("larger than 1048576 bytes"), std::string::npos);
  }
  {
    ScriptedServer server({HttpResponse(200, two_mib)});
    HttpClient http(options);
    Request req;
    req.url = server.url("/x");
    req.max_body = 3u << 20;  // a manifest may be larger
    auto res = http.Fetch(req);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    EXPECT_EQ(res->body.size(), two_mib.size());
  }
  {
    ScriptedServer server({HttpResponse(500, two_mib)});
    HttpClient http(options);
    Request req;
    req.url = server.url("/x");
    req.max_body = 64u << 20;  // an error body is cut at kMaxErrorBody whatever the request says
    auto res = http.Fetch(req);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    EXPECT_EQ(res->status, 500);
    EXPECT_EQ(res->body.size(), HttpClient::kMaxErrorBody);
  }
  {
    // 32 MiB of zeros in ~32 KiB of gzip: the limit counts decoded bytes.
    ScriptedServer server(
        {HttpResponse(200, Gzip(std::string(32u << 20, '\0')), "Content-Encoding: gzip\r\n")});
    HttpClient http(options);
    Request req;
    req.url = server.url("/x");
    req.accept_gzip = true;
    req.max_body = 8u << 20;
    auto res = http.Fetch(req);
    EXPECT_EQ(res.status().code(), Status::Code::kResourceExhausted) << res.status().ToString();
  }
}

}  // namespace
}  // namespace client
}  // namespace fhirbulk
