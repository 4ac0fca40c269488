// fhir-bulk config render: a conf.d template with its @PLACEHOLDERS@ filled in
// (util/conf_template.h), for `make up` (scripts/services.sh), the packages' instructions and
// the production guide. The output is written whole or not at all: to stdout, or with --out
// to a temporary file renamed over FILE (mode 0644: nginx configuration holds no secret, the
// secrets live in the files it names).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "tools/command.h"
#include "util/conf_template.h"
#include "util/errno_text.h"
#include "util/flags.h"

namespace fhirbulk {
namespace {

constexpr const char* kUsage =
    "usage: fhir-bulk config render --template FILE [--set NAME=VALUE]... [--values FILE]\n"
    "                               [--out FILE]\n"
    "       fhir-bulk config placeholders --template FILE\n"
    "  render        fills in the template's @NAME@ placeholders (conf.d/*.template; installed\n"
    "                in /usr/share/doc/libnginx-mod-http-fhir-bulk/examples/). Every\n"
    "                placeholder needs a value and every value a placeholder; an EMPTY value\n"
    "                drops the lines using it (SSL_CERTIFICATE= SSL_CERTIFICATE_KEY= for plain\n"
    "                HTTP). Values are nginx arguments: no ; { } # quotes or control characters.\n"
    "                --values FILE: NAME=VALUE lines ('#' comments); --set wins over it.\n"
    "                --out FILE: written through a temporary file and renamed (mode 0644).\n"
    "  placeholders  lists the names a template needs\n";

int Fail(const std::string& msg, int code = kExitFailure) {
  std::fprintf(stderr, "fhir-bulk config: %s\n", msg.c_str());
  return code;
}

Result<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError(path + ": " + ErrnoText(errno));
  std::stringstream b;
  b << in.rdbuf();
  if (b.str().size() > (4u << 20)) return Status::InvalidArgument(path + ": over 4 MiB");
  return b.str();
}

Status WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(tmp + ": " + ErrnoText(errno));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::IOError(tmp + ": " + ErrnoText(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Status::IOError(tmp + ": " + ErrnoText(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::IOError(path + ": " + ErrnoText(err));
  }
  return Status::OK();
}

}  // namespace

int RunConfig(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? kExitUsage : kExitOk;
  }
  const std::string action = argv[1];
  std::string template_file, values_file, out;
  std::vector<std::string> sets;
  FlagParser flags("fhir-bulk config " + action + " [options]", "See fhir-bulk config --help.");
  flags.AddString("template", &template_file, "the template", "FILE");
  flags.AddRepeated("set", &sets, "a placeholder's value (repeatable)", "NAME=VALUE");
  flags.AddString("values", &values_file, "NAME=VALUE lines", "FILE");
  flags.AddString("out", &out, "write here instead of stdout", "FILE");
  Status s = flags.Parse(argc - 1, argv + 1);
  if (flags.help_requested()) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (!s.ok()) return Fail(s.message(), kExitUsage);
  if (action != "render" && action != "placeholders") {
    return Fail("unknown action '" + action + "'\n" + kUsage, kExitUsage);
  }
  if (!flags.positionals().empty()) return Fail("unexpected argument", kExitUsage);
  if (template_file.empty()) return Fail("--template FILE is needed", kExitUsage);
  auto text = ReadAll(template_file);
  if (!text.ok()) return Fail(text.status().message());
  if (action == "placeholders") {
    for (const std::string& name : TemplatePlaceholders(*text)) std::printf("%s\n", name.c_str());
    return kExitOk;
  }

  std::map<std::string, std::string> values;
  for (const std::string& a : sets) {
    Status p = ParseTemplateAssignment(a, &values);
    if (!p.ok()) return Fail("--set: " + p.message(), kExitUsage);
  }
  if (!values_file.empty()) {
    auto file = ReadAll(values_file);
    if (!file.ok()) return Fail(file.status().message());
    std::istringstream lines(*file);
    std::string line;
    int number = 0;
    while (std::getline(lines, line)) {
      number++;
      const size_t start = line.find_first_not_of(" \t");
      if (start == std::string::npos || line[start] == '#') continue;
      std::map<std::string, std::string> one;
      Status p = ParseTemplateAssignment(line.substr(start), &one);
      if (!p.ok()) {
        return Fail(values_file + ":" + std::to_string(number) + ": " + p.message(), kExitUsage);
      }
      values.insert(*one.begin());  // --set wins
    }
  }
  auto rendered = RenderTemplate(*text, values);
  if (!rendered.ok()) return Fail(template_file + ": " + rendered.status().message(), kExitUsage);
  if (out.empty()) {
    std::fwrite(rendered->data(), 1, rendered->size(), stdout);
    return std::fflush(stdout) == 0 ? kExitOk : kExitFailure;
  }
  Status w = WriteAtomically(out, *rendered);
  return w.ok() ? kExitOk : Fail(w.message());
}

}  // namespace fhirbulk
