#include "util/flags.h"

#include <cerrno>
#include <cstdlib>

namespace fhirbulk {

FlagParser::FlagParser(std::string usage, std::string description)
    : usage_(std::move(usage)), description_(std::move(description)) {}

void FlagParser::AddString(const std::string& name, std::string* out, const std::string& help,
                           const std::string& value_name) {
  flags_.push_back({name, Kind::kString, out, help, value_name});
}
void FlagParser::AddInt(const std::string& name, long long* out, const std::string& help,
                        const std::string& value_name) {
  flags_.push_back({name, Kind::kInt, out, help, value_name});
}
void FlagParser::AddDouble(const std::string& name, double* out, const std::string& help,
                           const std::string& value_name) {
  flags_.push_back({name, Kind::kDouble, out, help, value_name});
}
void FlagParser::AddBool(const std::string& name, bool* out, const std::string& help) {
  flags_.push_back({name, Kind::kBool, out, help, ""});
}
void FlagParser::AddRepeated(const std::string& name, std::vector<std::string>* out,
                             const std::string& help, const std::string& value_name) {
  flags_.push_back({name, Kind::kRepeated, out, help, value_name});
}

const FlagParser::Flag* FlagParser::Find(const std::string& name) const {
  for (const Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

Status FlagParser::Assign(const Flag& f, const std::string& value) {
  switch (f.kind) {
    case Kind::kString:
      *static_cast<std::string*>(f.out) = value;
      return Status::OK();
    case Kind::kRepeated:
      static_cast<std::vector<std::string>*>(f.out)->push_back(value);
      return Status::OK();
    case Kind::kInt: {
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || errno != 0) {
        return Status::InvalidArgument("--" + f.name + " wants a whole number, got '" + value +
                                       "'");
      }
      *static_cast<long long*>(f.out) = v;
      return Status::OK();
    }
    case Kind::kDouble: {
      errno = 0;
      char* end = nullptr;
      double v = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || errno != 0) {
        return Status::InvalidArgument("--" + f.name + " wants a number, got '" + value + "'");
      }
      *static_cast<double*>(f.out) = v;
      return Status::OK();
    }
    case Kind::kBool:
      if (value == "true" || value == "1" || value == "yes") {
        *static_cast<bool*>(f.out) = true;
      } else if (value == "false" || value == "0" || value == "no") {
        *static_cast<bool*>(f.out) = false;
      } else {
        return Status::InvalidArgument("--" + f.name + " wants true or false, got '" + value + "'");
      }
      return Status::OK();
  }
  return Status::Internal("unknown flag kind");
}

Status FlagParser::Parse(int argc, char** argv) {
  bool flags_done = false;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-' || arg == "-") {
      positionals_.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      help_requested_ = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) return Status::InvalidArgument("unknown option '" + arg + "'");
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const Flag* f = Find(name);
    if (f == nullptr) return Status::InvalidArgument("unknown option '--" + name + "'");
    if (f->kind == Kind::kBool && !has_value) {
      *static_cast<bool*>(f->out) = true;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) return Status::InvalidArgument("--" + name + " needs a value");
      value = argv[++i];
    }
    FHIRBULK_RETURN_IF_ERROR(Assign(*f, value));
  }
  return Status::OK();
}

std::string FlagParser::Help() const {
  std::string h = "usage: " + usage_ + "\n\n" + description_ + "\n";
  if (!flags_.empty()) h += "\noptions:\n";
  for (const Flag& f : flags_) {
    std::string left = "  --" + f.name;
    if (f.kind != Kind::kBool) left += " " + f.value_name;
    if (left.size() < 28) {
      left.resize(28, ' ');
    } else {
      left += "\n" + std::string(28, ' ');
    }
    h += left + f.help + "\n";
  }
  h += "  -h, --help                show this help\n";
  return h;
}

}  // namespace fhirbulk
