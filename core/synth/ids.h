// Resource ids: UUID-shaped strings (RFC 4122 version 4 layout) drawn from a deterministic Rng,
// so the same seed gives the same ids and distinct streams give unrelated ones.
//
// Thread-safety: values.

#ifndef FHIRBULK_SYNTH_IDS_H_
#define FHIRBULK_SYNTH_IDS_H_

#include <cstdint>
#include <string_view>

#include "synth/prng.h"

namespace fhirbulk {
namespace synth {

struct Uuid {
  char text[36];
  std::string_view view() const { return std::string_view(text, sizeof(text)); }
  bool operator==(const Uuid& o) const { return view() == o.view(); }
};

inline Uuid UuidFromBits(uint64_t hi, uint64_t lo) {
  static const char kHex[] = "0123456789abcdef";
  hi = (hi & ~0xF000ULL) | 0x4000ULL;                         // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  Uuid u;
  int pos = 0;
  for (int i = 0; i < 32; i++) {
    if (i == 8 || i == 12 || i == 16 || i == 20) u.text[pos++] = '-';
    uint64_t word = i < 16 ? hi : lo;
    int shift = 60 - 4 * (i % 16);
    u.text[pos++] = kHex[(word >> shift) & 15];
  }
  return u;
}

inline Uuid NewUuid(Rng* rng) {
  uint64_t hi = rng->Next();
  uint64_t lo = rng->Next();
  return UuidFromBits(hi, lo);
}

}  // namespace synth
}  // namespace fhirbulk

#endif  // FHIRBULK_SYNTH_IDS_H_
