// The token endpoint's discovery (client/token_source.h) against a scripted server: retried
// through the client's retry loop while the server is in trouble, refused at once when the
// server publishes no SMART configuration.

#include <gtest/gtest.h>

#include <string>

#include "client/http_client.h"
#include "client/retry.h"
#include "client/token_source.h"
#include "scripted_server.h"

namespace fhirbulk {
namespace client {
namespace {

RetryPolicy Quick(int retries) {
  RetryPolicy p = RetryPolicy::ForOthers(retries);
  p.initial_backoff_seconds = 0.01;
  p.min_wait_seconds = 0.01;
  p.max_retry_after_seconds = 0.01;
  return p;
}

Result<std::string> Discover(ScriptedServer* server, int retries, int* waits = nullptr) {
  HttpOptions options;
  options.connect_timeout_seconds = 5;
  HttpClient http(options);
  RetryLoop retry(Quick(retries), nullptr);
  return DiscoverTokenEndpoint(&http, server->url("/fhir/"), &retry,
                               [waits](const Attempt&, double) {
                                 if (waits != nullptr) ++*waits;
                               });
}

const std::string kConfig = R"({"token_endpoint":"https://auth.example.org/token"})";

TEST(ClientTokenTest, DiscoveryIsRetriedWhileTheServerIsInTrouble) {
  ScriptedServer server({Http(503, "", "Retry-After: 1\r\n"), Http(502, ""), Http(200, kConfig)});
  int waits = 0;
  auto endpoint = Discover(&server, 3, &waits);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status().ToString();
  EXPECT_EQ(*endpoint, "https://auth.example.org/token");
  EXPECT_EQ(waits, 2);
  ASSERT_EQ(server.requests().size(), 3u);
  EXPECT_EQ(server.requests()[0].rfind("GET /fhir/.well-known/smart-configuration ", 0), 0u)
      << server.requests()[0];
}

TEST(ClientTokenTest, DiscoveryGivesUpAfterItsRetries) {
  ScriptedServer server({Http(503, ""), Http(503, "")});
  auto endpoint = Discover(&server, 1);
  EXPECT_EQ(endpoint.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(endpoint.status().message().rfind("gave up after 2 attempts", 0), 0u)
      << endpoint.status().message();
}

TEST(ClientTokenTest, NoConfigurationIsNotFoundAtOnce) {
  {
    ScriptedServer server({Http(404, "")});
    auto endpoint = Discover(&server, 3);
    EXPECT_EQ(endpoint.status().code(), Status::Code::kNotFound);
    EXPECT_NE(endpoint.status().message().find("give --token-url"), std::string::npos);
    EXPECT_EQ(server.requests().size(), 1u);
  }
  {
    ScriptedServer server({Http(200, R"({"token_endpoint":"/relative"})")});
    auto endpoint = Discover(&server, 3);
    EXPECT_EQ(endpoint.status().code(), Status::Code::kNotFound);
    EXPECT_EQ(server.requests().size(), 1u);
  }
}

}  // namespace
}  // namespace client
}  // namespace fhirbulk
