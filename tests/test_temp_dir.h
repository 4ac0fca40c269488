// A temporary directory for tests that feed the loader files: removed with everything in it
// when the object goes; Write() gzips names ending in ".gz".

#ifndef FHIRBULK_TESTS_TEST_TEMP_DIR_H_
#define FHIRBULK_TESTS_TEST_TEMP_DIR_H_

#include <stdlib.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace fhirbulk {

class TestTempDir {
 public:
  explicit TestTempDir(const std::string& prefix) {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + ".XXXXXX")).string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TestTempDir() { std::filesystem::remove_all(path_); }
  TestTempDir(const TestTempDir&) = delete;
  TestTempDir& operator=(const TestTempDir&) = delete;

  // Writes `content` to <dir>/<name> (parent directories created) and returns the path.
  std::string Write(const std::string& name, const std::string& content) {
    std::filesystem::path p = std::filesystem::path(path_) / name;
    std::filesystem::create_directories(p.parent_path());
    if (name.size() > 3 && name.substr(name.size() - 3) == ".gz") {
      gzFile gz = gzopen(p.c_str(), "wb");
      gzwrite(gz, content.data(), static_cast<unsigned>(content.size()));
      gzclose(gz);
    } else {
      std::ofstream(p, std::ios::binary) << content;
    }
    return p.string();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_TESTS_TEST_TEMP_DIR_H_
