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
};

std::string CapabilityStatementJson(const CapabilityOptions& options);

}  // namespace fhirbulk

#endif  // FHIRBULK_SERVER_CAPABILITY_H_
