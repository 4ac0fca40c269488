// fhir-bulk: the command-line tools of ngx_fhir_bulk, as git-style subcommands.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tools/command.h"
#include "util/version.h"

namespace fhirbulk {

std::string ResolveConninfo(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  const char* env = std::getenv("PG_CONNINFO");
  return env != nullptr ? env : "";
}

namespace {

const Command kCommands[] = {
    {"migrate", "create or upgrade the PostgreSQL schema", RunMigrate},
    {"synth", "generate a realistic synthetic population", RunSynth},
    {"load", "load FHIR resources (NDJSON, Bundles, JSON files, .gz)", RunLoad},
    {"worker", "run export jobs (the export engine daemon)", RunWorker},
    {"export", "export data from a Bulk Data server (the client)", RunExport},
    {"client", "register and manage SMART clients; make client keys", RunClient},
    {"jobs", "list, show and cancel export jobs of any client; the job history", RunJobs},
    {"audit", "query the audit trail (client, time range, action; table, CSV, JSON)", RunAudit},
    {"token", "print a bearer access token for a registered client (for curl)", RunToken},
    {"config", "render the conf.d templates with values", RunConfig},
    {"grants", "print least-privilege GRANTs for the nginx and worker database roles", RunGrants},
    {"group", "read, search, create (members or criteria) and delete Groups", RunGroup},
};

void PrintUsage(FILE* out) {
  std::fprintf(out,
               "usage: fhir-bulk <command> [options]\n\n"
               "The tools of ngx_fhir_bulk, a FHIR Bulk Data export server for nginx.\n\n"
               "commands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(out,
               "\nRun 'fhir-bulk <command> --help' for a command's options.\n"
               "Database: --db CONNINFO, else $PG_CONNINFO, else the PG* variables.\n"
               "\"--\" ends a command's options: what follows is an argument even if it\n"
               "starts with '-'.\n");
}

}  // namespace
}  // namespace fhirbulk

int main(int argc, char** argv) {
  using fhirbulk::kCommands;
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    fhirbulk::PrintUsage(stdout);
    return argc < 2 ? fhirbulk::kExitUsage : fhirbulk::kExitOk;
  }
  if (std::strcmp(argv[1], "--version") == 0) {
    std::printf("fhir-bulk %s\n", FHIRBULK_VERSION);
    return 0;
  }
  for (const auto& c : kCommands) {
    if (std::strcmp(argv[1], c.name) == 0) return c.run(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "fhir-bulk: unknown command '%s'\n\n", argv[1]);
  fhirbulk::PrintUsage(stderr);
  return fhirbulk::kExitUsage;
}
