// The fhir-bulk subcommands. Each is a function taking the arguments after the subcommand
// name (argv[0] is the subcommand) and returning the process exit status. Every command
// answers --help. Add a command by defining its function and listing it in main.cc.

#ifndef FHIRBULK_TOOLS_COMMAND_H_
#define FHIRBULK_TOOLS_COMMAND_H_

#include <string>

namespace fhirbulk {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};

// Exit statuses shared by the tools.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // the work failed (details on stderr)
constexpr int kExitUsage = 2;    // bad command line

// The database connection string: the --db flag if given, else $PG_CONNINFO, else "" (libpq
// then uses the PG* environment variables).
std::string ResolveConninfo(const std::string& flag_value);

int RunMigrate(int argc, char** argv);
int RunSynth(int argc, char** argv);
int RunLoad(int argc, char** argv);
int RunWorker(int argc, char** argv);
int RunExport(int argc, char** argv);
int RunClient(int argc, char** argv);
int RunJobs(int argc, char** argv);
int RunAudit(int argc, char** argv);
int RunToken(int argc, char** argv);
int RunConfig(int argc, char** argv);
int RunGrants(int argc, char** argv);
int RunGroup(int argc, char** argv);

}  // namespace fhirbulk

#endif  // FHIRBULK_TOOLS_COMMAND_H_
