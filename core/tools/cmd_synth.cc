// fhir-bulk synth: generates a realistic synthetic population (synth/generator.h) into NDJSON
// files or straight into the database through the loader.

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "load/loader.h"
#include "synth/generator.h"
#include "synth/groups.h"
#include "synth/sink.h"
#include "tools/command.h"
#include "util/flags.h"
#include "util/progress.h"

namespace fhirbulk {

namespace {

// Feeds each resource to the loader, as if it were a line of an NDJSON file named "synth".
class LoaderSink : public synth::ResourceSink {
 public:
  explicit LoaderSink(Loader* loader) : loader_(loader) {}
  Status Put(synth::Kind /*kind*/, std::string_view json) override {
    return loader_->AddResourceJson(json, "synth", ++line_);
  }

 private:
  Loader* loader_;
  uint64_t line_ = 0;
};

void PrintSummary(const synth::SynthStats& stats, uint64_t patients, double seconds) {
  std::fprintf(stderr, "%-22s %12s %10s %14s %10s\n", "type", "resources", "/patient", "bytes",
               "avg bytes");
  for (size_t k = 0; k < synth::kKindCount; k++) {
    if (stats.count[k] == 0) continue;
    std::fprintf(stderr, "%-22s %12s %10.2f %14s %10.0f\n",
                 synth::KindName(static_cast<synth::Kind>(k)),
                 Progress::Thousands(stats.count[k]).c_str(),
                 static_cast<double>(stats.count[k]) / static_cast<double>(patients),
                 Progress::Bytes(static_cast<double>(stats.bytes[k])).c_str(),
                 static_cast<double>(stats.bytes[k]) / static_cast<double>(stats.count[k]));
  }
  double bytes = static_cast<double>(stats.total_bytes());
  double count = static_cast<double>(stats.total_count());
  std::fprintf(
      stderr,
      "total: %s resources (%.1f per patient), %s (%s per patient) in %s: "
      "%.1f MB/s, %s resources/s, %.0f patients/s\n",
      Progress::Thousands(stats.total_count()).c_str(), count / patients,
      Progress::Bytes(bytes).c_str(), Progress::Bytes(bytes / patients).c_str(),
      Progress::Duration(seconds).c_str(), seconds > 0 ? bytes / 1e6 / seconds : 0.0,
      Progress::Thousands(static_cast<uint64_t>(seconds > 0 ? count / seconds : 0)).c_str(),
      seconds > 0 ? patients / seconds : 0.0);
}

}  // namespace

int RunSynth(int argc, char** argv) {
  long long patients = 0, seed = 1, threads = -1;
  std::string out, db, groups = synth::kDefaultGroups;
  bool load = false, quiet = false;
  FlagParser flags(
      "fhir-bulk synth --patients N [--seed S] (--out DIR | --load [--db CONNINFO]) "
      "[--groups LIST]",
      "Generates a realistic synthetic population (FHIR R4, shaped like Synthea's: patients, "
      "encounters, observations, conditions, procedures, medications, immunizations, claims, "
      "care plans, notes...) with about 390 resources and 500 KB of JSON per patient, plus "
      "shared organizations, practitioners and locations, and Groups. The same seed and N "
      "always give the same bytes, and patient k is the same whatever N is. meta.lastUpdated "
      "is spread over 2010-2026 so that _since selects part of the data; --load keeps it (as "
      "'fhir-bulk load --keep-last-updated': meant for a database no export is running on).");
  flags.AddInt("patients", &patients, "number of patients (required)");
  flags.AddInt("seed", &seed, "population seed (default 1)", "S");
  flags.AddString("out", &out, "write <Type>.ndjson files into DIR (created if missing)", "DIR");
  flags.AddBool("load", &load,
                "load into the database instead of writing files, keeping each resource's "
                "meta.lastUpdated");
  flags.AddString("db", &db, "PostgreSQL connection string for --load", "CONNINFO");
  flags.AddString("groups", &groups,
                  "Groups to create: comma-separated all, P% (e.g. 10%), small; or none "
                  "(default all,10%,1%,small)",
                  "LIST");
  flags.AddInt("threads", &threads,
               "generator threads (default 2 with --out, 1 with --load; 0 = none)");
  flags.AddBool("quiet", &quiet, "no progress line and no summary");
  Status s = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return kExitOk;
  }
  const char* usage_error = nullptr;
  if (!s.ok()) {
    usage_error = s.message().c_str();
  } else if (!flags.positionals().empty()) {
    usage_error = "unexpected argument";
  } else if (patients <= 0) {
    usage_error = "--patients N (N > 0) is required";
  } else if (out.empty() == !load) {
    usage_error = "give exactly one of --out DIR and --load";
  } else if (!db.empty() && !load) {
    usage_error = "--db goes with --load";
  } else if (threads > 64) {
    usage_error = "--threads: at most 64";
  }
  if (usage_error != nullptr) {
    std::fprintf(stderr, "fhir-bulk synth: %s\n", usage_error);
    return kExitUsage;
  }
  auto group_specs = synth::ParseGroupSpecs(groups);
  if (!group_specs.ok()) {
    std::fprintf(stderr, "fhir-bulk synth: --groups: %s\n", group_specs.status().message().c_str());
    return kExitUsage;
  }

  synth::SynthOptions options;
  options.seed = static_cast<uint64_t>(seed);
  options.patients = static_cast<uint64_t>(patients);
  options.groups = *group_specs;
  options.threads = threads >= 0 ? static_cast<int>(threads) : (load ? 1 : 2);
  Progress progress("synth", "patients", options.patients, !quiet);
  options.on_progress = [&progress](uint64_t done) { progress.Update(done); };

  std::unique_ptr<Loader> loader;
  std::unique_ptr<synth::ResourceSink> sink;
  if (load) {
    LoadOptions load_options;
    load_options.conninfo = ResolveConninfo(db);
    // The generated lastUpdated spread is what makes _since meaningful on a demo population.
    // Safe only because a generated population is an initial import (see load/loader.h).
    load_options.keep_source_last_updated = true;
    auto opened = Loader::Open(load_options);
    if (!opened.ok()) {
      std::fprintf(stderr, "fhir-bulk synth: %s\n", opened.status().ToString().c_str());
      return kExitFailure;
    }
    loader = std::move(opened.value());
    sink = std::make_unique<LoaderSink>(loader.get());
  } else {
    auto opened = synth::NdjsonDirSink::Open(out);
    if (!opened.ok()) {
      std::fprintf(stderr, "fhir-bulk synth: %s\n", opened.status().ToString().c_str());
      return kExitFailure;
    }
    sink = std::move(opened.value());
  }

  auto start = std::chrono::steady_clock::now();
  synth::SynthStats stats;
  s = synth::Generate(options, sink.get(), &stats);
  LoadReport report;
  if (s.ok() && loader) s = loader->Finish(&report);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress.Finish();
  if (!s.ok()) {
    std::fprintf(stderr, "fhir-bulk synth: %s\n", s.ToString().c_str());
    return kExitFailure;
  }
  if (!quiet) {
    PrintSummary(stats, options.patients, seconds);
    if (loader) {
      std::fprintf(stderr, "loaded %s, unchanged %s, rejected %s\n",
                   Progress::Thousands(report.total_loaded()).c_str(),
                   Progress::Thousands(report.total_unchanged()).c_str(),
                   Progress::Thousands(report.total_rejected()).c_str());
      for (size_t i = 0; i < report.rejections.size() && i < 10; i++) {
        const LoadRejection& r = report.rejections[i];
        std::fprintf(stderr, "  rejected %s %s: %s\n", r.source.c_str(), r.location.c_str(),
                     r.reason.c_str());
      }
    }
  }
  if (loader && report.total_rejected() > 0) return kExitFailure;
  return kExitOk;
}

}  // namespace fhirbulk
