// The status URL's query (`?page=N` of a paged manifest, IG 3.0.0 allowPartialManifests):
// ParseManifestPageQuery, which the server runs on every status poll's raw query before any
// authorization check. The input is the raw query (after '?').
//
// Checked: an accepted query names a page in 1..kMaxManifestPageNo, and a query without a
// `page` parameter is page 1.

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "export/manifest_pages.h"

using namespace fhirbulk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view query(reinterpret_cast<const char*>(data), size);
  auto page = ParseManifestPageQuery(query);
  if (page.ok() && (*page < 1 || *page > kMaxManifestPageNo)) abort();
  if (page.ok() && query.find("page") == std::string_view::npos && *page != 1) abort();
  return 0;
}
