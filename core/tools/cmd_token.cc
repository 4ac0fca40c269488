// fhir-bulk token: a bearer access token for a registered client, printed for curl and the
// like. The same flow as `fhir-bulk export` (core/client/token_source.h): the token endpoint
// from the server's SMART configuration (or --token-url), a fresh client assertion signed with
// the client's private key, a client_credentials grant. Only the token goes to stdout; it is
// never logged. Exit statuses as `fhir-bulk export`'s: 2 usage or key, 3 refused, 4 server or
// network.

#include <cstdio>
#include <string>

#include "client/export_client.h"
#include "client/http_client.h"
#include "client/retry.h"
#include "client/signing_key.h"
#include "client/token_source.h"
#include "tools/command.h"
#include "util/flags.h"

namespace fhirbulk {
namespace {

int Fail(const std::string& msg, int code) {
  std::fprintf(stderr, "fhir-bulk token: %s\n", msg.c_str());
  return code;
}

}  // namespace

int RunToken(int argc, char** argv) {
  std::string fhir_url, server, token_url, client_id, key_file, kid, scope = "system/*.read",
                                                                     ca_file;
  long long retries = 3;
  FlagParser flags(
      "fhir-bulk token (--fhir-url URL | --token-url URL) --client-id ID --key FILE [options]",
      "Prints an access token for the client, e.g. curl -H \"Authorization: Bearer "
      "$(fhir-bulk token --fhir-url $FHIR_BASE --client-id ID --key me.pem)\" ... "
      "The token lives as long as the server grants (at most 300 s here).");
  flags.AddString("fhir-url", &fhir_url,
                  "the FHIR base URL; the token endpoint comes from its "
                  ".well-known/smart-configuration",
                  "URL");
  flags.AddString("server", &server, "the same as --fhir-url", "URL");
  flags.AddString("token-url", &token_url, "the token endpoint (no discovery)", "URL");
  flags.AddString("client-id", &client_id, "the registered client_id", "ID");
  flags.AddString("key", &key_file,
                  "the client's private key: PEM, a private JWK or a JWK Set (keep it 0600)",
                  "FILE");
  flags.AddString("kid", &kid, "the key id to send (default: the JWK's, else the thumbprint)");
  flags.AddString("scope", &scope, "the scopes to ask for (space-separated)");
  flags.AddString("cacert", &ca_file, "CA certificates (PEM) instead of the system's", "FILE");
  flags.AddInt("retries", &retries, "transient failures in a row before giving up");
  Status s = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return kExitOk;
  }
  if (!s.ok()) return Fail(s.message(), kExitUsage);
  if (!flags.positionals().empty()) return Fail("unexpected argument", kExitUsage);
  if (!server.empty() && !fhir_url.empty() && server != fhir_url) {
    return Fail("--server and --fhir-url differ", kExitUsage);
  }
  if (fhir_url.empty()) fhir_url = server;
  if (fhir_url.empty() == token_url.empty()) {
    return Fail("give --fhir-url (discovery) or --token-url", kExitUsage);
  }
  if (client_id.empty() || key_file.empty())
    return Fail("--client-id and --key are needed", kExitUsage);
  if (retries < 0 || retries > 100) return Fail("--retries must be 0..100", kExitUsage);
  while (!fhir_url.empty() && fhir_url.back() == '/') fhir_url.pop_back();

  auto key = client::SigningKey::LoadFile(key_file, kid);
  if (!key.ok()) return Fail(key.status().message(), kExitUsage);
  client::HttpOptions http;
  http.ca_file = ca_file;
  if (token_url.empty()) {
    client::HttpClient discovery(http);
    client::RetryLoop retry(client::RetryPolicy::ForOthers(static_cast<int>(retries)), nullptr);
    auto found = client::DiscoverTokenEndpoint(&discovery, fhir_url, &retry);
    if (!found.ok()) {
      return Fail(found.status().message(), found.status().code() == Status::Code::kNotFound
                                                ? client::kExportAuthFailed
                                                : client::kExportServerError);
    }
    token_url = *found;
  }
  client::TokenSourceOptions t;
  t.client_id = client_id;
  t.token_url = token_url;
  t.scope = scope;
  t.retries = static_cast<int>(retries);
  t.http = http;
  t.log = [](const std::string& m) { std::fprintf(stderr, "fhir-bulk token: %s\n", m.c_str()); };
  client::TokenSource tokens(std::move(key).value(), std::move(t));
  auto token = tokens.Get();
  if (!token.ok()) return Fail(token.status().message(), client::ExitCodeFor(token.status()));
  std::printf("%s\n", token->c_str());
  return kExitOk;
}

}  // namespace fhirbulk
