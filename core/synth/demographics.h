// Demographic tables for synthetic people and places: given and family names, streets,
// Massachusetts towns (ZIP code, position, population weight), birthplaces, languages and the
// US Core (OMB) race and ethnicity categories.
//
// All names are common US names; none of the generated people is real.
//
// Thread-safety: immutable data.

#ifndef FHIRBULK_SYNTH_DEMOGRAPHICS_H_
#define FHIRBULK_SYNTH_DEMOGRAPHICS_H_

#include <cstddef>

namespace fhirbulk {
namespace synth {

struct Town {
  const char* name;
  const char* zip;
  double latitude, longitude;
  double weight;  // population, thousands
};
extern const Town kTowns[];
extern const size_t kTownCount;
// The town at cumulative population fraction u in [0, 1): a population-weighted pick.
const Town& TownAt(double u);

extern const char* const kMaleGivenNames[];
extern const size_t kMaleGivenNameCount;
extern const char* const kFemaleGivenNames[];
extern const size_t kFemaleGivenNameCount;
extern const char* const kFamilyNames[];
extern const size_t kFamilyNameCount;
extern const char* const kStreetNames[];
extern const size_t kStreetNameCount;
extern const char* const kStreetSuffixes[];
extern const size_t kStreetSuffixCount;

struct BirthPlace {
  const char* city;
  const char* state;
  const char* country;
};
// Born abroad or elsewhere in the US (the rest are born in a Massachusetts town).
extern const BirthPlace kDistantBirthPlaces[];
extern const size_t kDistantBirthPlaceCount;

struct Language {
  const char* code;  // BCP 47
  const char* display;
};
extern const Language kEnglish;
extern const Language kOtherLanguages[];
extern const size_t kOtherLanguageCount;

struct OmbCategory {
  const char* code;  // urn:oid:2.16.840.1.113883.6.238
  const char* display;
  double weight;
};
extern const OmbCategory kRaces[];
extern const size_t kRaceCount;
extern const OmbCategory kHispanic;
extern const OmbCategory kNotHispanic;

// Words that make clinic names ("<Town> Family Practice").
extern const char* const kClinicSuffixes[];
extern const size_t kClinicSuffixCount;
extern const char* const kHospitalSuffixes[];
extern const size_t kHospitalSuffixCount;

}  // namespace synth
}  // namespace fhirbulk

#endif  // FHIRBULK_SYNTH_DEMOGRAPHICS_H_
