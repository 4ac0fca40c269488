// Helpers shared by the libFuzzer harnesses (fuzz/*_fuzzer.cc).
//
// Each harness feeds untrusted bytes to one parser the way the server, the client or the
// loader would, and checks nothing but the absence of crashes, sanitizer reports, hangs and
// runaway memory (libFuzzer's -rss_limit_mb): the parsers' answers are tested by the unit
// tests. Inputs may be up to 1 MiB (-max_len=1048576, see the Makefile's fuzz targets).

#ifndef FHIRBULK_FUZZ_FUZZ_UTIL_H_
#define FHIRBULK_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fhirbulk {
namespace fuzz {

// Reads an input as a selector byte followed by parts separated by a line "\n--\n", so one
// input can carry several fields (a query and a body, a job id and a file name). Missing
// parts are empty.
class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : rest_(reinterpret_cast<const char*>(data), size) {}

  // The first byte (0 when the input is empty), consumed.
  uint8_t Selector() {
    if (rest_.empty()) return 0;
    uint8_t b = static_cast<uint8_t>(rest_[0]);
    rest_.remove_prefix(1);
    return b;
  }
  // The text up to the next separator (or the end), consumed.
  std::string_view Part() {
    static constexpr std::string_view kSep = "\n--\n";
    size_t at = rest_.find(kSep);
    std::string_view part = rest_.substr(0, at);
    rest_.remove_prefix(at == std::string_view::npos ? rest_.size() : at + kSep.size());
    return part;
  }
  std::string_view Rest() const { return rest_; }

 private:
  std::string_view rest_;
};

}  // namespace fuzz
}  // namespace fhirbulk

#endif  // FHIRBULK_FUZZ_FUZZ_UTIL_H_
