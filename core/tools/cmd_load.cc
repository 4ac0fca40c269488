// fhir-bulk load: puts FHIR resources into the database (see load/loader.h).

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "fhir/resource_types.h"
#include "load/loader.h"
#include "tools/command.h"
#include "util/flags.h"
#include "util/progress.h"

namespace fhirbulk {

namespace {

// Distinct from kExitFailure so that scripts can tell "fix your data" from "retry later".
constexpr int kExitDatabaseUnavailable = 3;
constexpr size_t kRejectionsShown = 50;

void PrintSummary(const LoadReport& report, double seconds) {
  std::printf("%-28s %10s %10s %10s %10s\n", "type", "loaded", "unchanged", "deleted", "rejected");
  LoadTypeCounts total;
  uint64_t absent = 0;
  for (const auto& [type, c] : report.by_type) {
    std::printf("%-28s %10s %10s %10s %10s\n", type.c_str(), Progress::Thousands(c.loaded).c_str(),
                Progress::Thousands(c.unchanged).c_str(), Progress::Thousands(c.deleted).c_str(),
                Progress::Thousands(c.rejected).c_str());
    total.loaded += c.loaded;
    total.unchanged += c.unchanged;
    total.deleted += c.deleted;
    total.rejected += c.rejected;
    absent += c.absent;
  }
  std::printf("%-28s %10s %10s %10s %10s\n", "total", Progress::Thousands(total.loaded).c_str(),
              Progress::Thousands(total.unchanged).c_str(),
              Progress::Thousands(total.deleted).c_str(),
              Progress::Thousands(total.rejected).c_str());
  uint64_t handled = total.loaded + total.unchanged + total.deleted;
  double rate = seconds > 0 ? handled / seconds : 0;
  std::printf("%s resources in %.2f s (%s resources/s)\n", Progress::Thousands(handled).c_str(),
              seconds, Progress::Thousands(static_cast<uint64_t>(rate)).c_str());
  if (absent > 0) {
    std::printf("%s deletions found nothing to delete:", Progress::Thousands(absent).c_str());
    for (size_t i = 0; i < report.absent_deletions.size() && i < 10; i++) {
      std::printf(" %s", report.absent_deletions[i].c_str());
    }
    std::printf("%s\n", absent > 10 ? " ..." : "");
  }
}

void PrintRejections(const LoadReport& report) {
  uint64_t total = report.total_rejected();
  size_t shown = 0;
  for (const LoadRejection& r : report.rejections) {
    if (shown == kRejectionsShown) break;
    std::fprintf(stderr, "rejected: %s: %s: %s\n", r.source.c_str(), r.location.c_str(),
                 r.reason.c_str());
    shown++;
  }
  if (total > shown) {
    std::fprintf(stderr, "... and %s more rejected\n", Progress::Thousands(total - shown).c_str());
  }
}

int FailureExit(const Status& s) {
  return s.code() == Status::Code::kUnavailable ? kExitDatabaseUnavailable : kExitFailure;
}

}  // namespace

int RunLoad(int argc, char** argv) {
  std::string db, deletions_file;
  std::vector<std::string> deletes;
  bool quiet = false, keep_last_updated = false;
  long long batch = 5000;
  const LoadOptions defaults;
  long long writers = defaults.writers;
  long long max_line_bytes = static_cast<long long>(defaults.max_line_bytes);
  long long max_document_bytes = static_cast<long long>(defaults.max_document_bytes);
  long long max_bundle_entries = static_cast<long long>(defaults.max_bundle_entries);
  FlagParser flags(
      "fhir-bulk load [--db CONNINFO] [--delete Type/id ...] [--deletions FILE.ndjson] "
      "[--keep-last-updated] [--quiet] PATH...",
      "Loads FHIR R4 resources into the database: NDJSON files (any mix of types), Bundles "
      "(transaction, batch, collection, searchset; urn:uuid references resolved), single "
      "resource JSON files, directories of these (recursively, in name order) and .gz files of "
      "each. Resources are upserted by type and id: identical content changes nothing, changed "
      "content becomes a new version. Bad input is reported and skipped. meta.lastUpdated is "
      "the time of loading unless --keep-last-updated is given.\n"
      "Exit status: 0 all loaded, 1 something was rejected or failed, 2 bad command line, "
      "3 database unreachable.");
  flags.AddString("db", &db, "PostgreSQL connection string", "CONNINFO");
  flags.AddRepeated("delete", &deletes, "delete this resource (repeatable)", "Type/id");
  flags.AddString("deletions", &deletions_file,
                  "NDJSON of resources or Bundles with DELETE entries to delete", "FILE");
  flags.AddInt("batch", &batch, "resources per transaction (default 5000)");
  flags.AddInt("writers", &writers,
               "database connections writing at once, 1-16 (default 2): the database's index "
               "upkeep, not parsing, limits a load; more writers use more of its cores",
               "N");
  // Only for imports while no export runs: a row committed with an old last_updated during an
  // export is missed by the export that continues from it with _since (see load/loader.h).
  flags.AddBool("keep-last-updated", &keep_last_updated,
                "store the input's meta.lastUpdated (a valid instant, not in the future) instead "
                "of the load time; deletions still take the load time. For initial or offline "
                "imports only: rows written with old timestamps while an export runs can be "
                "missed by the next export with _since");
  flags.AddInt("max-line-bytes", &max_line_bytes,
               "reject an NDJSON line longer than this (default 128 MiB)", "BYTES");
  flags.AddInt("max-document-bytes", &max_document_bytes,
               "reject a JSON file (a Bundle) larger than this (default 512 MiB)", "BYTES");
  flags.AddInt("max-bundle-entries", &max_bundle_entries,
               "reject a Bundle with more entries than this (default 1000000)", "N");
  flags.AddBool("quiet", &quiet, "no progress line and no summary table");
  Status s = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return kExitOk;
  }
  if (!s.ok()) {
    std::fprintf(stderr, "fhir-bulk load: %s\n", s.message().c_str());
    return kExitUsage;
  }
  if (flags.positionals().empty() && deletes.empty() && deletions_file.empty()) {
    std::fprintf(stderr,
                 "fhir-bulk load: nothing to load (give PATH..., --delete or --deletions)\n");
    return kExitUsage;
  }
  if (writers < 1 || writers > 16) {
    std::fprintf(stderr, "fhir-bulk load: --writers must be 1..16\n");
    return kExitUsage;
  }
  if (batch < 1) {
    std::fprintf(stderr, "fhir-bulk load: --batch must be at least 1\n");
    return kExitUsage;
  }
  if (max_line_bytes < 1 || max_document_bytes < 1 || max_bundle_entries < 1) {
    std::fprintf(stderr, "fhir-bulk load: the --max-* limits must be positive\n");
    return kExitUsage;
  }
  std::vector<std::pair<std::string, std::string>> delete_keys;
  for (const std::string& d : deletes) {
    size_t slash = d.find('/');
    std::string type = d.substr(0, slash == std::string::npos ? 0 : slash);
    if (slash == std::string::npos || !IsR4ResourceType(type) || slash + 1 == d.size()) {
      std::fprintf(stderr, "fhir-bulk load: --delete wants Type/id, got '%s'\n", d.c_str());
      return kExitUsage;
    }
    delete_keys.emplace_back(type, d.substr(slash + 1));
  }

  std::vector<std::string> inputs = flags.positionals();
  if (!deletions_file.empty()) inputs.push_back(deletions_file);
  for (const std::string& path : inputs) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      std::fprintf(stderr, "fhir-bulk load: %s: no such file or directory\n", path.c_str());
      return kExitUsage;
    }
  }

  LoadOptions options;
  options.conninfo = ResolveConninfo(db);
  options.progress = !quiet;
  options.batch_resources = static_cast<size_t>(batch);
  options.writers = static_cast<int>(writers);
  options.keep_source_last_updated = keep_last_updated;
  options.max_line_bytes = static_cast<size_t>(max_line_bytes);
  options.max_document_bytes = static_cast<size_t>(max_document_bytes);
  options.max_bundle_entries = static_cast<size_t>(max_bundle_entries);
  auto start = std::chrono::steady_clock::now();
  auto loader = Loader::Open(options);
  if (!loader.ok()) {
    std::fprintf(stderr, "fhir-bulk load: %s\n", loader.status().message().c_str());
    return FailureExit(loader.status());
  }
  s = (*loader)->AddPaths(flags.positionals());
  if (s.ok() && !deletions_file.empty()) s = (*loader)->AddDeletionsFile(deletions_file);
  for (size_t i = 0; s.ok() && i < delete_keys.size(); i++) {
    s = (*loader)->Delete(delete_keys[i].first, delete_keys[i].second);
  }
  LoadReport report;
  Status finished = (*loader)->Finish(&report);
  if (s.ok()) s = finished;
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!quiet) PrintSummary(report, seconds);
  std::fflush(stdout);  // the summary before the rejections when both go to one place
  PrintRejections(report);
  if (!s.ok()) {
    std::fprintf(stderr, "fhir-bulk load: %s\n", s.message().c_str());
    return FailureExit(s);
  }
  return report.total_rejected() > 0 ? kExitFailure : kExitOk;
}

}  // namespace fhirbulk
