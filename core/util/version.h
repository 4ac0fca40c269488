// The software version, the one definition of it: CMake reads the project version from this
// file, and the C ABI (fhirbulk_version), the CapabilityStatement and the client's User-Agent
// report it.

#ifndef FHIRBULK_UTIL_VERSION_H_
#define FHIRBULK_UTIL_VERSION_H_

#define FHIRBULK_VERSION "0.1.0"

#endif  // FHIRBULK_UTIL_VERSION_H_
