// The CapabilityStatement served at [base]/metadata: what this server actually implements.
// Built once per server (it depends only on configuration) and served from memory.

#ifndef FHIRBULK_SERVER_CAPABILITY_H_
#define FHIRBULK_SERVER_CAPABILITY_H_

#include <string>

namespace fhirbulk {

struct CapabilityOptions {
  std::string base_url;  // absolute, no trailing slash
  std::string software_version;
  bool exports = false;  // the $export operations are served (an export directory is set)
  // Non-empty: SMART Backend Services protect the API; rest.security names the SMART-on-FHIR
  // service and the oauth-uris extension gives this token endpoint.
  std::string token_url;
};

std::string CapabilityStatementJson(const CapabilityOptions& options);

// [base]/.well-known/smart-configuration (SMART App Launch 2.0 section 2, backend services
// only: client_credentials with private_key_jwt, RS384 and ES384, v1 and v2 scopes).
std::string SmartConfigurationJson(const std::string& token_url);

}  // namespace fhirbulk

#endif  // FHIRBULK_SERVER_CAPABILITY_H_
