// Export-path micro-benchmarks, each beside a baseline measured in the same process:
//
//   NdjsonWriter      Append of generated Observation lines into a job directory, plain and
//                     with the gzip twin (level 1), ending in Cancel (no fdatasync: the CPU and
//                     page-cache cost of writing) and, separately, in Seal+Publish (with the
//                     fdatasync of every file). Baseline: the same bytes write()n to one file
//                     through a buffer of the same size (BM_RawWriteBaseline).
//   _elements         TypeSubsetter::Apply on generated Observations (keeping code+subject).
//                     Baselines: rapidjson SAX parse + re-serialization of the whole resource
//                     (BM_SaxCopyBaseline, what any streaming filter must at least do) and a
//                     plain copy of the stored bytes (the fast path of unsubsetted types).
//   _typeFilter       The server does not match _typeFilter in C++: it compiles the queries to a
//                     SQL expression that PostgreSQL evaluates (export/type_filter_sql.h). What
//                     is measured is that parse + compile path: ParseExportRequest of a kick-off
//                     with _typeFilter, then TypeFilterSql for each exported type. Baseline: the
//                     same kick-off without _typeFilter.
//
//   fhirbulk_bench --benchmark_filter='Ndjson|RawWrite|Subset|SaxCopy|CopyBaseline|TypeFilter'
//
// Files go to a fresh directory under $TMPDIR (default /tmp), removed at exit.

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "export/export_request.h"
#include "export/type_filter_sql.h"
#include "synth/patient.h"
#include "synth/sink.h"
#include "worker/elements.h"
#include "worker/ndjson_writer.h"

namespace fhirbulk {
namespace {

// Observation lines of a few generated patients (compact JSON as stored), ~1 KB each.
const std::vector<std::string>& Observations() {
  static const std::vector<std::string>* lines = [] {
    auto* out = new std::vector<std::string>();
    synth::PatientGenerator gen(1);
    synth::MemorySink sink;
    for (uint64_t p = 0; p < 20 && out->size() < 20000; ++p) {
      sink.items.clear();
      if (!gen.Generate(p, &sink).ok()) std::abort();
      for (auto& item : sink.items) {
        if (item.kind == synth::Kind::kObservation) out->push_back(std::move(item.json));
      }
    }
    if (out->empty()) std::abort();
    return out;
  }();
  return *lines;
}

// A private directory for the writer benchmarks, removed at exit.
const std::string& ScratchDir() {
  static const std::string* dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/fhirbulk-bench-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    auto* d = new std::string(tmpl);
    std::atexit([] { std::filesystem::remove_all(ScratchDir()); });
    return d;
  }();
  return *dir;
}

constexpr int64_t kBytesPerIteration = 64 << 20;  // per writer iteration, ~64 MB of NDJSON

// One unit's worth of lines: Append until kBytesPerIteration, then Cancel (range(1) == 0) or
// Seal + Publish (range(1) == 1). range(0): gzip level (0 = no twin).
void BM_NdjsonWriter(benchmark::State& state) {
  const auto& lines = Observations();
  const int gzip = static_cast<int>(state.range(0));
  const bool publish = state.range(1) != 0;
  int64_t bytes = 0, items = 0, unit = 0;
  for (auto _ : state) {
    NdjsonWriterOptions o;
    o.dir = ScratchDir();
    o.type = "Observation";
    o.unit_no = static_cast<int>(++unit);
    o.worker_id = "bench";
    o.gzip_level = gzip;
    NdjsonWriter w(o);
    int64_t written = 0;
    for (size_t i = 0; written < kBytesPerIteration; ++i) {
      const std::string& l = lines[i % lines.size()];
      Status s = w.Append(l);
      if (!s.ok()) {
        state.SkipWithError(s.ToString().c_str());
        return;
      }
      written += static_cast<int64_t>(l.size()) + 1;
      items++;
    }
    bytes += written;
    if (publish) {
      Status s = w.Seal();
      if (s.ok()) s = w.Publish();
      if (!s.ok()) {
        state.SkipWithError(s.ToString().c_str());
        return;
      }
      state.PauseTiming();
      for (const auto& f : w.files()) {
        ::unlink((ScratchDir() + "/" + f.name).c_str());
        ::unlink((ScratchDir() + "/" + f.name + ".gz").c_str());
      }
      state.ResumeTiming();
    } else {
      w.Cancel();
    }
  }
  state.SetBytesProcessed(bytes);
  state.SetItemsProcessed(items);
}
BENCHMARK(BM_NdjsonWriter)
    ->ArgNames({"gzip", "publish"})
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({0, 1})
    ->Args({1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Baseline: the same lines, each plus '\n', through a 1 MB buffer (the writer's default) into
// one file with write(2); then unlink (no sync).
void BM_RawWriteBaseline(benchmark::State& state) {
  const auto& lines = Observations();
  std::vector<char> buf(1 << 20);
  int64_t bytes = 0, items = 0;
  const std::string path = ScratchDir() + "/raw.ndjson";
  for (auto _ : state) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      state.SkipWithError("open");
      return;
    }
    size_t used = 0;
    int64_t written = 0;
    auto flush = [&] {
      size_t off = 0;
      while (off < used) {
        ssize_t n = ::write(fd, buf.data() + off, used - off);
        if (n <= 0) std::abort();
        off += static_cast<size_t>(n);
      }
      used = 0;
    };
    for (size_t i = 0; written < kBytesPerIteration; ++i) {
      const std::string& l = lines[i % lines.size()];
      if (used + l.size() + 1 > buf.size()) flush();
      std::memcpy(buf.data() + used, l.data(), l.size());
      used += l.size();
      buf[used++] = '\n';
      written += static_cast<int64_t>(l.size()) + 1;
      items++;
    }
    flush();
    ::close(fd);
    ::unlink(path.c_str());
    bytes += written;
  }
  state.SetBytesProcessed(bytes);
  state.SetItemsProcessed(items);
}
BENCHMARK(BM_RawWriteBaseline)->Unit(benchmark::kMillisecond)->UseRealTime();

// --- _elements ------------------------------------------------------------------------------

void BM_ElementsSubset(benchmark::State& state) {
  const auto& lines = Observations();
  TypeSubsetter sub("Observation", {"code", "subject"});
  std::string out;
  int64_t bytes = 0;
  size_t i = 0;
  for (auto _ : state) {
    const std::string& l = lines[i++ % lines.size()];
    Status s = sub.Apply(l, &out);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(out.data());
    bytes += static_cast<int64_t>(l.size());
  }
  state.SetBytesProcessed(bytes);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ElementsSubset);

// Baseline: SAX parse of the whole resource re-serialized by a Writer (numbers raw), the
// least work a streaming JSON filter does.
void BM_SaxCopyBaseline(benchmark::State& state) {
  const auto& lines = Observations();
  rapidjson::StringBuffer sb;
  int64_t bytes = 0;
  size_t i = 0;
  for (auto _ : state) {
    const std::string& l = lines[i++ % lines.size()];
    sb.Clear();
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    rapidjson::Reader reader;
    rapidjson::MemoryStream ms(l.data(), l.size());
    if (!reader.Parse<rapidjson::kParseNumbersAsStringsFlag>(ms, w)) {
      state.SkipWithError("parse");
      return;
    }
    benchmark::DoNotOptimize(sb.GetString());
    bytes += static_cast<int64_t>(l.size());
  }
  state.SetBytesProcessed(bytes);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SaxCopyBaseline);

// Baseline: copying the stored bytes (what an unsubsetted type costs).
void BM_CopyBaseline(benchmark::State& state) {
  const auto& lines = Observations();
  std::string out;
  int64_t bytes = 0;
  size_t i = 0;
  for (auto _ : state) {
    const std::string& l = lines[i++ % lines.size()];
    out.assign(l);
    benchmark::DoNotOptimize(out.data());
    bytes += static_cast<int64_t>(l.size());
  }
  state.SetBytesProcessed(bytes);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CopyBaseline);

// --- _typeFilter: parse + compile to SQL ------------------------------------------------------

// A realistic kick-off: three types, five queries with token, date-prefix, reference, :not,
// :missing and several ORed values.
const char kFilteredQuery[] =
    "_type=Observation,Condition,MedicationRequest"
    "&_typeFilter=Observation%3Fcategory%3Dlaboratory%26date%3Dge2020-01-01"
    "&_typeFilter=Observation%3Fcode%3Dhttp%3A%2F%2Floinc.org%7C8867-4%2Chttp%3A%2F%2Floinc.org%"
    "7C29463-7"
    "%26status%3Dfinal%2Camended"
    "&_typeFilter=Condition%3Fclinical-status%3Dactive%26onset-date%3Dlt2023-06-01T00%3A00%3A00Z"
    "&_typeFilter=Condition%3Fverification-status%3Anot%3Drefuted%26code%3Amissing%3Dfalse"
    "&_typeFilter=MedicationRequest%3Fstatus%3Dactive%26intent%3Dorder%26subject%3DPatient%2F123";
const char kPlainQuery[] = "_type=Observation,Condition,MedicationRequest";

HttpRequest Kickoff(const char* query) {
  HttpRequest r;
  r.method = HttpMethod::kGet;
  r.path = "/$export";
  r.query = query;
  r.accept = "application/fhir+json";
  r.prefer = "respond-async";
  return r;
}

ExportParseOptions ParseOptions() {
  ExportParseOptions o;
  o.base_url = "https://ehr.example.org/fhir";
  return o;
}

// Parse only.
void BM_TypeFilterParse(benchmark::State& state) {
  HttpRequest r = Kickoff(kFilteredQuery);
  ExportParseOptions o = ParseOptions();
  for (auto _ : state) {
    auto e = ParseExportRequest(r, ExportLevel::kSystem, "", o);
    if (!e.ok() || e->type_filters.size() != 5) {
      state.SkipWithError(e.ok() ? "expected 5 queries" : e.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(e->type_filters.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TypeFilterParse);

// Compile only: the SQL expression of each type's queries (as the unit runner builds it).
void BM_TypeFilterCompile(benchmark::State& state) {
  auto e = ParseExportRequest(Kickoff(kFilteredQuery), ExportLevel::kSystem, "", ParseOptions());
  if (!e.ok()) {
    state.SkipWithError(e.status().ToString().c_str());
    return;
  }
  std::string sql;
  std::vector<std::string> params;
  for (auto _ : state) {
    for (const std::string& type : e->types) {
      sql.clear();
      params.clear();
      Status s = TypeFilterSql(TypeFilterQueriesFor(e->type_filters, type), 2, &sql, &params);
      if (!s.ok()) {
        state.SkipWithError(s.ToString().c_str());
        return;
      }
      benchmark::DoNotOptimize(sql.data());
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TypeFilterCompile);

// Parse + compile: the whole _typeFilter path of one kick-off.
void BM_TypeFilterParseCompile(benchmark::State& state) {
  HttpRequest r = Kickoff(kFilteredQuery);
  ExportParseOptions o = ParseOptions();
  std::string sql;
  std::vector<std::string> params;
  for (auto _ : state) {
    auto e = ParseExportRequest(r, ExportLevel::kSystem, "", o);
    if (!e.ok()) {
      state.SkipWithError(e.status().ToString().c_str());
      return;
    }
    for (const std::string& type : e->types) {
      sql.clear();
      params.clear();
      Status s = TypeFilterSql(TypeFilterQueriesFor(e->type_filters, type), 2, &sql, &params);
      if (!s.ok()) {
        state.SkipWithError(s.ToString().c_str());
        return;
      }
      benchmark::DoNotOptimize(sql.data());
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TypeFilterParseCompile);

// Baseline: the same kick-off without _typeFilter.
void BM_TypeFilterBaselineParse(benchmark::State& state) {
  HttpRequest r = Kickoff(kPlainQuery);
  ExportParseOptions o = ParseOptions();
  for (auto _ : state) {
    auto e = ParseExportRequest(r, ExportLevel::kSystem, "", o);
    if (!e.ok()) {
      state.SkipWithError(e.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(e->types.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TypeFilterBaselineParse);

}  // namespace
}  // namespace fhirbulk
