// Export file names: what a download request names (SplitExportFilePath, which the nginx files
// module calls on the URI, and ParseExportFileName) and the files handler's decision
// (FileAccess::Authorize) on a job id, file name, Authorization header and
// query all taken from the input, against an export directory with one job owned by "c1".
//
// Input: selector byte (unused), then job id, "\n--\n", file name, "\n--\n", Authorization,
// "\n--\n", query.

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "export/job_dir.h"
#include "export/job_store.h"
#include "fuzz_util.h"
#include "http/http.h"
#include "server/file_access.h"

using namespace fhirbulk;

namespace {

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

const FileAccess* MakeAccess() {
  char tmpl[] = "/tmp/fhirbulk-fuzz-files-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  if (dir == nullptr) abort();
  const std::string root(dir);
  WriteFile(root + "/token.keys", "k1 0123456789abcdef0123456789abcdef0123456789abcdef\n");
  WriteFile(root + "/url.keys", "u1 fedcba9876543210fedcba9876543210fedcba9876543210\n");
  const std::string exports = root + "/exports";
  const std::string job = exports + "/0f8fad5b-d9cb-469f-a165-70867728950e";
  if (mkdir(exports.c_str(), 0750) != 0 || mkdir(job.c_str(), 0750) != 0) abort();
  WriteFile(job + "/.owner", "c1\n");
  WriteFile(job + "/Patient.1.1.ndjson", "{}\n");  // a name workers write
  FileAccessOptions o;
  o.auth_enabled = true;
  o.token_key_file = root + "/token.keys";
  o.signed_url_key_file = root + "/url.keys";
  o.export_dir = exports;
  auto fa = FileAccess::Create(o);
  if (!fa.ok()) abort();
  return fa->release();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const FileAccess* access = MakeAccess();
  fuzz::FuzzInput in(data, size);
  (void)in.Selector();
  const std::string_view job = in.Part();
  const std::string_view file = in.Part();
  const std::string_view authorization = in.Part();
  const std::string_view query = in.Rest();
  (void)ParseExportFileName(file);
  std::string rel(job);
  rel.append("/").append(file);
  std::string_view split_job, split_file;
  if (SplitExportFilePath(rel, &split_job, &split_file)) {
    // What the module serves must be a job id and a name the workers write, nothing else.
    if (!IsValidJobId(split_job) || !ParseExportFileName(split_file)) abort();
  }
  std::string client;
  HttpResponse denial;
  (void)access->Authorize(job, file, authorization, query, &client, &denial);
  return 0;
}
