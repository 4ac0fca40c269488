// Test helper: decompresses a whole gzip file with zlib, to check what the export writes.

#ifndef FHIRBULK_TESTS_TEST_GZIP_H_
#define FHIRBULK_TESTS_TEST_GZIP_H_

#include <zlib.h>

#include <string>

namespace fhirbulk {

// What zlib's inflate makes of a whole gzip file; "<error>" unless it is exactly one complete
// gzip member (header, data, CRC-32 and length trailer checked by zlib).
inline std::string Gunzip(const std::string& gz) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return "<error>";
  std::string out;
  char buf[65536];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - z.avail_out);
  }
  const bool whole = rc == Z_STREAM_END && z.avail_in == 0;
  inflateEnd(&z);
  return whole ? out : "<error>";
}

}  // namespace fhirbulk

#endif  // FHIRBULK_TESTS_TEST_GZIP_H_
