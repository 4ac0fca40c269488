// fhir-bulk export: the Bulk Data client (see client/export_client.h).

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "client/display.h"
#include "client/export_client.h"
#include "client/interrupt.h"
#include "client/signing_key.h"
#include "tools/command.h"
#include "util/flags.h"

namespace fhirbulk {

namespace {

// "A,B" given once or several times -> A, B.
std::vector<std::string> SplitCommas(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const std::string& v : values) {
    size_t start = 0;
    while (start <= v.size()) {
      size_t comma = v.find(',', start);
      if (comma == std::string::npos) comma = v.size();
      if (comma > start) out.push_back(v.substr(start, comma - start));
      start = comma + 1;
    }
  }
  return out;
}

int Fail(const char* what, const Status& s) {
  std::fprintf(stderr, "fhir-bulk export: %s%s\n", what, s.message().c_str());
  return client::ExitCodeFor(s);
}

// Signals go to one thread: the first SIGINT/SIGTERM interrupts the export (after a Ctrl-C
// on a terminal, RunExport asks whether to cancel it on the server; otherwise it prints how to
// resume), a second one ends the process at once.
class SignalWatcher {
 public:
  explicit SignalWatcher(client::Interrupt* interrupt) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);  // before any other thread exists
    std::thread([this, interrupt] {
      int sig = 0;
      while (sigwait(&set_, &sig) == 0) {
        if (signal_ != 0) _exit(128 + sig);
        signal_ = sig;
        interrupt->Trigger();
      }
    }).detach();
  }
  int signal() const { return signal_.load(); }

 private:
  sigset_t set_;
  std::atomic<int> signal_{0};
};

}  // namespace

int RunExport(int argc, char** argv) {
  client::ExportOptions o;
  bool system_level = false, patient_level = false, cancel = false, no_gzip = false;
  bool quiet = false, print_jwks = false;
  std::string group;
  std::vector<std::string> types, elements, include_associated;
  long long parallel = 4, retries = 5, max_rate = 0, stall_timeout = 60;
  long long max_manifest_bytes = static_cast<long long>(client::ManifestLimits().max_bytes);
  long long max_manifest_files = static_cast<long long>(client::ManifestLimits().max_files);
  long long max_line_bytes = static_cast<long long>(client::NdjsonValidator::kDefaultMaxLineBytes);
  FlagParser flags(
      "fhir-bulk export --fhir-url URL [--system|--patient|--group ID] [options] --out DIR",
      "Runs a FHIR Bulk Data export (IG v2.0.0) against any conformant server: kick-off, "
      "status polling (Retry-After, 429), parallel downloads (gzip, retries, resume with "
      "Range) validated line by line, manifest.json and summary.json in DIR. With "
      "--client-id and --key it authorizes with SMART Backend Services (RS384 or ES384 "
      "client assertions; tokens renewed before they expire). Ctrl-C asks whether to cancel "
      "the export on the server; --status URL resumes an export (or its downloads) later.\n\n"
      "exit status: 0 success, 1 local failure (directory, disk), 2 usage, 3 authorization "
      "refused, 4 server or network error (kick-off refused, export failed, files "
      "unreachable), 5 files failed validation, 130 interrupted");
  flags.AddString("fhir-url", &o.fhir_base, "the server's FHIR base URL", "URL");
  flags.AddBool("system", &system_level, "system-level export: [base]/$export (the default)");
  flags.AddBool("patient", &patient_level, "all patients: [base]/Patient/$export");
  flags.AddString("group", &group, "one group: [base]/Group/ID/$export", "ID");
  flags.AddRepeated("type", &types, "_type: resource types, comma-separated or repeated", "T,...");
  flags.AddString("since", &o.since, "_since: only resources changed after this instant",
                  "INSTANT");
  flags.AddString("until", &o.until, "_until (IG v3): only resources changed before this",
                  "INSTANT");
  flags.AddRepeated("elements", &elements, "_elements: element subsetting", "E,...");
  flags.AddRepeated("type-filter", &o.type_filters,
                    "_typeFilter: one Type?query per flag (repeat it)", "QUERY");
  flags.AddRepeated("patient-ref", &o.patients,
                    "patient: only these patients (repeat it; implies --post)", "Patient/ID");
  flags.AddBool("post", &o.post, "kick off with POST and a Parameters resource");
  flags.AddString("organize-output-by", &o.organize_output_by,
                  "organizeOutputBy (IG v3): files of patient blocks; checks their structure",
                  "Patient");
  flags.AddRepeated("include-associated-data", &include_associated,
                    "includeAssociatedData (IG v3), e.g. LatestProvenanceResources", "CODE,...");
  flags.AddBool("lenient", &o.lenient,
                "Prefer: handling=lenient (the server may skip what it does not support)");
  flags.AddBool("allow-partial-manifests", &o.allow_partial_manifests,
                "allowPartialManifests=true: download files as the running export lists "
                "them, following manifest pages (IG 3.0.0)");
  flags.AddBool("separate-export-status", &o.separate_export_status,
                "Prefer: separate-export-status: polls answer 200 with the export's status in "
                "X-Export-Status (IG 3.0.0)");
  flags.AddString("client-id", &o.client_id, "SMART Backend Services client id", "ID");
  flags.AddString("key", &o.key_file,
                  "the client's private key: a JWK or JWK Set (.jwk/.json) or PEM file", "FILE");
  flags.AddString("kid", &o.kid,
                  "the key's id (default: the JWK's kid, else its RFC 7638 thumbprint)", "KID");
  flags.AddString("scope", &o.scope, "scopes to request (default system/*.read)", "S");
  flags.AddString("token-url", &o.token_url,
                  "token endpoint (default: from [base]/.well-known/smart-configuration)", "URL");
  flags.AddString("out", &o.out_dir, "output directory (new, or the one of the --status export)",
                  "DIR");
  flags.AddString("status", &o.status_url, "resume the export at this status URL", "URL");
  flags.AddBool("cancel", &cancel, "with --status: cancel that export (DELETE) and exit");
  flags.AddInt("parallel", &parallel, "files downloaded at once (default 4)");
  flags.AddInt("retries", &retries,
               "transient failures in a row before a request is given up (default 5)");
  flags.AddBool("no-gzip", &no_gzip, "do not ask for gzip-compressed files");
  flags.AddInt("max-rate", &max_rate, "download at most this many bytes/s in all (0: no limit)",
               "BYTES");
  flags.AddInt("stall-timeout", &stall_timeout,
               "give up on a transfer that receives nothing for this long (default 60)", "S");
  flags.AddInt("max-manifest-bytes", &max_manifest_bytes,
               "refuse a manifest larger than this (default 64 MiB)", "BYTES");
  flags.AddInt("max-manifest-files", &max_manifest_files,
               "refuse a manifest listing more files than this (default 100000)", "N");
  flags.AddInt("max-line-bytes", &max_line_bytes,
               "an NDJSON line longer than this is invalid, not buffered (default 64 MiB)",
               "BYTES");
  flags.AddString("cacert", &o.http.ca_file, "CA certificates (PEM) instead of the system's",
                  "FILE");
  flags.AddBool("quiet", &quiet, "only warnings and the summary");
  flags.AddBool("print-jwks", &print_jwks,
                "print the public JWK Set of --key (to register the client) and exit");
  Status s = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return kExitOk;
  }
  if (!s.ok() || !flags.positionals().empty()) {
    const std::string why =
        s.ok() ? "unexpected argument '" + flags.positionals()[0] + "'" : s.message();
    std::fprintf(stderr, "fhir-bulk export: %s\n(fhir-bulk export --help lists the options)\n",
                 why.c_str());
    return kExitUsage;
  }

  if (print_jwks) {
    if (o.key_file.empty()) {
      std::fprintf(stderr, "fhir-bulk export: --print-jwks needs --key\n");
      return kExitUsage;
    }
    auto key = client::SigningKey::LoadFile(o.key_file, o.kid);
    if (!key.ok()) return Fail("", key.status());
    std::printf("{\"keys\":[%s]}\n", key->PublicJwk().c_str());
    return kExitOk;
  }

  if (system_level + patient_level + !group.empty() > 1) {
    std::fprintf(stderr, "fhir-bulk export: --system, --patient and --group exclude each other\n");
    return kExitUsage;
  }
  o.level = patient_level    ? client::ExportLevel::kPatient
            : !group.empty() ? client::ExportLevel::kGroup
                             : client::ExportLevel::kSystem;
  o.group_id = group;
  o.types = SplitCommas(types);
  o.elements = SplitCommas(elements);
  o.include_associated_data = SplitCommas(include_associated);
  // out of range stays out of range (ValidateOptions refuses it) instead of wrapping
  o.parallel = static_cast<int>(std::clamp(parallel, -1LL, 1000LL));
  o.retries = static_cast<int>(std::clamp(retries, -1LL, 1000LL));
  o.accept_gzip = !no_gzip;
  if (max_manifest_bytes < 1 || max_manifest_files < 1 || max_line_bytes < 1) {
    std::fprintf(stderr, "fhir-bulk export: the --max-* limits must be positive\n");
    return kExitUsage;
  }
  o.manifest_limits.max_bytes = static_cast<size_t>(max_manifest_bytes);
  o.manifest_limits.max_files = static_cast<size_t>(max_manifest_files);
  o.max_line_bytes = static_cast<size_t>(max_line_bytes);
  o.http.stall_timeout_seconds = stall_timeout > 0 ? stall_timeout : 60;
  if (max_rate > 0) {
    // curl limits each transfer; the files in flight share the total
    o.http.max_recv_bytes_per_second = std::max(1LL, max_rate / std::max(1LL, parallel));
  }

  client::Interrupt interrupt;
  SignalWatcher signals(&interrupt);
  const bool tty = isatty(STDERR_FILENO) != 0;
  client::Display display(tty, quiet);

  if (cancel) {
    if (o.status_url.empty()) {
      std::fprintf(stderr, "fhir-bulk export: --cancel needs --status URL\n");
      return kExitUsage;
    }
    s = client::ValidateOptions(o, /*for_cancel=*/true);
    if (!s.ok()) return Fail("", s);
    client::ExportClient c(o, &display, &interrupt);
    s = c.Cancel();
    if (!s.ok()) return Fail("cancel: ", s);
    std::printf("cancelled %s\n", o.status_url.c_str());
    return kExitOk;
  }

  s = client::ValidateOptions(o);
  if (!s.ok()) return Fail("", s);
  client::ExportClient c(o, &display, &interrupt);
  s = c.Run();
  display.Clear();
  if (s.code() == Status::Code::kAborted && signals.signal() != 0) {
    const int exit_code = 128 + signals.signal();
    if (c.status_url().empty()) {
      std::fprintf(stderr, "fhir-bulk export: interrupted before the export was accepted\n");
      return exit_code;
    }
    bool cancel_job = false;
    if (isatty(STDIN_FILENO) && tty && signals.signal() == SIGINT) {
      std::fprintf(stderr,
                   "\nInterrupted. Cancel the export on the server as well (DELETE %s)? "
                   "[y/N] ",
                   c.status_url().c_str());
      std::string answer;
      std::getline(std::cin, answer);
      cancel_job = !answer.empty() && (answer[0] == 'y' || answer[0] == 'Y');
    }
    if (cancel_job) {
      interrupt.Reset();
      Status cs = c.Cancel();
      if (cs.ok()) {
        std::fprintf(stderr, "fhir-bulk export: the export is cancelled on the server\n");
      } else {
        std::fprintf(stderr, "fhir-bulk export: cancel failed: %s\n", cs.message().c_str());
      }
    } else {
      std::fprintf(stderr,
                   "fhir-bulk export: interrupted; the export continues on the server. "
                   "Resume with:\n  fhir-bulk export --status '%s' --out '%s'%s\n",
                   c.status_url().c_str(), o.out_dir.c_str(),
                   o.client_id.empty() ? "" : " --client-id ... --key ...");
    }
    return exit_code;
  }
  if (!s.ok()) {
    if (!c.status_url().empty() && s.code() != Status::Code::kCorruption &&
        s.code() != Status::Code::kAborted) {
      std::fprintf(stderr, "fhir-bulk export: %s\n  (status URL %s)\n", s.message().c_str(),
                   c.status_url().c_str());
      return client::ExitCodeFor(s);
    }
    return Fail("", s);
  }
  return kExitOk;
}

}  // namespace fhirbulk
