// Deterministic pseudo-random numbers for the synthetic population generator.
//
// Contract: every value depends only on the seed material given to the constructor, and the
// arithmetic is fully specified here (no std::*_distribution, whose algorithms differ across
// standard libraries, no libm transcendental functions, no clocks). The same seed therefore
// gives the same stream with any compiler, standard library and platform.
//
//  - SplitMix64: a 64-bit mixer, used to derive independent seeds ("streams") from
//    (population seed, domain, index) so that patient k is the same whatever N is.
//  - Rng: xoshiro256** (Blackman & Vigna), seeded through SplitMix64, with the few
//    distributions the generator needs (bounded integers, uniform reals in fixed point,
//    Bernoulli, an approximate normal, weighted choice).
//
// Thread-safety: an Rng is a value; use one per thread (one per patient, in practice).

#ifndef FHIRBULK_SYNTH_PRNG_H_
#define FHIRBULK_SYNTH_PRNG_H_

#include <cstddef>
#include <cstdint>

namespace fhirbulk {
namespace synth {

// One step of SplitMix64: advances *state and returns the mixed output.
inline uint64_t SplitMix64Next(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// A well-mixed 64-bit hash of (a, b, c): distinct inputs give unrelated outputs.
inline uint64_t Mix3(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t s = a;
  uint64_t h = SplitMix64Next(&s);
  s = h ^ b;
  h = SplitMix64Next(&s);
  s = h ^ c;
  return SplitMix64Next(&s);
}

// Stream domains: separate random streams derived from the same seed never collide.
enum class Stream : uint64_t {
  kPatient = 1,    // a patient's life (index = patient index)
  kPatientId = 2,  // a patient's id alone (so Groups need not simulate lives)
  kFacility = 3,   // a shared Organization/Practitioner/Location triple
  kGroup = 4,      // Group membership and metadata
};

class Rng {
 public:
  Rng(uint64_t seed, Stream stream, uint64_t index) {
    uint64_t sm = Mix3(seed, static_cast<uint64_t>(stream), index);
    for (uint64_t& word : s_) word = SplitMix64Next(&sm);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n); n > 0. Lemire's multiply-shift with rejection: exact and portable.
  uint64_t Below(uint64_t n) {
    uint64_t x = Next();
    unsigned __int128 m = static_cast<unsigned __int128>(x) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        x = Next();
        m = static_cast<unsigned __int128>(x) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  // Uniform integer in [lo, hi] (inclusive); lo <= hi.
  int64_t Range(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo) + 1));
  }

  // Uniform double in [0, 1) with 53 random bits (exact IEEE arithmetic: portable).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  // Uniform double in [lo, hi).
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }

  // True with probability p.
  bool Chance(double p) { return Uniform() < p; }

  // Approximately standard normal: Irwin-Hall sum of 4 uniforms, rescaled (mean 0, sd 1,
  // tails cut at +-3.46). Only + and * on doubles, so portable bit for bit.
  double Normal() {
    double sum = Uniform() + Uniform() + Uniform() + Uniform();
    return (sum - 2.0) * 1.7320508075688772;  // sqrt(3): the sum's sd is 1/sqrt(3)
  }
  double Normal(double mean, double sd) { return mean + sd * Normal(); }

  // Index into weights[0..n) chosen with probability proportional to the weight.
  size_t Weighted(const double* weights, size_t n) {
    double total = 0;
    for (size_t i = 0; i < n; i++) total += weights[i];
    double x = Uniform() * total;
    for (size_t i = 0; i < n; i++) {
      if (x < weights[i]) return i;
      x -= weights[i];
    }
    return n - 1;
  }

  // Number of events of a Poisson process with the given mean (Knuth's product of uniforms;
  // small means only, as used here). Only multiplication: portable.
  int Poisson(double mean) {
    double limit = ExpNeg(mean);
    double p = Uniform();
    int k = 0;
    while (p > limit && k < 1000) {
      p *= Uniform();
      k++;
    }
    return k;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  // e^-x for x >= 0 via (e^(-x/2^k))^(2^k) with a Taylor series: deterministic arithmetic.
  static double ExpNeg(double x) {
    int halvings = 0;
    while (x > 0.5) {
      x *= 0.5;
      halvings++;
    }
    double term = 1, sum = 1;
    for (int i = 1; i < 12; i++) {
      term *= -x / i;
      sum += term;
    }
    for (int i = 0; i < halvings; i++) sum *= sum;
    return sum;
  }

  uint64_t s_[4];
};

}  // namespace synth
}  // namespace fhirbulk

#endif  // FHIRBULK_SYNTH_PRNG_H_
