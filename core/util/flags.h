// A small command-line flag parser for the fhir-bulk subcommands.
//
// Flags are long options: --name=value or --name value; booleans take no value
// (--name, or --name=false). "--" ends the flags. -h and --help set help_requested().
// Everything else is a positional argument. Help text is generated from the definitions.

#ifndef FHIRBULK_UTIL_FLAGS_H_
#define FHIRBULK_UTIL_FLAGS_H_

#include <string>
#include <vector>

#include "util/status.h"

namespace fhirbulk {

class FlagParser {
 public:
  // usage: e.g. "fhir-bulk load [options] PATH..."; description: one paragraph.
  FlagParser(std::string usage, std::string description);

  void AddString(const std::string& name, std::string* out, const std::string& help,
                 const std::string& value_name = "VALUE");
  void AddInt(const std::string& name, long long* out, const std::string& help,
              const std::string& value_name = "N");
  void AddDouble(const std::string& name, double* out, const std::string& help,
                 const std::string& value_name = "X");
  void AddBool(const std::string& name, bool* out, const std::string& help);
  // May be given several times; each value is appended.
  void AddRepeated(const std::string& name, std::vector<std::string>* out, const std::string& help,
                   const std::string& value_name = "VALUE");

  // argv[0] is skipped. Unknown flags and bad values are InvalidArgument.
  Status Parse(int argc, char** argv);

  bool help_requested() const { return help_requested_; }
  const std::vector<std::string>& positionals() const { return positionals_; }
  std::string Help() const;

 private:
  enum class Kind { kString, kInt, kDouble, kBool, kRepeated };
  struct Flag {
    std::string name;
    Kind kind;
    void* out;
    std::string help;
    std::string value_name;
  };
  const Flag* Find(const std::string& name) const;
  Status Assign(const Flag& f, const std::string& value);

  std::string usage_;
  std::string description_;
  std::vector<Flag> flags_;
  std::vector<std::string> positionals_;
  bool help_requested_ = false;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_UTIL_FLAGS_H_
