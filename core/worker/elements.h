// _elements subsetting (IG v2.0.0 §2.3; FHIR R4 search `_elements`).
//
// An item "Type.element" applies to Type only; a bare "element" to every type. Subsetting
// applies to a type when at least one item does; other types are exported untouched (and
// take the fast path that copies the stored bytes).
//
// A subsetted resource keeps, at the top level only:
//  - resourceType, id, meta, implicitRules and modifierExtension (modifiers change the
//    meaning of what is kept, so they are never dropped);
//  - the listed elements. A name matches its JSON key, its primitive-extension twin
//    ("_status" with "status") and, for choice elements, every typed variant: "value" (or
//    "value[x]") matches valueQuantity, valueString, ... (key = name + an R4 data type name);
//  - the type's mandatory elements (min >= 1 in the R4 StructureDefinition), from
//    MandatoryElements(); a type missing from that table keeps only the listed ones.
// and gets meta.tag {system http://terminology.hl7.org/CodeSystem/v3-ObservationValue,
// code SUBSETTED} (added once; meta is created when absent). Everything else (key order,
// strings, numbers digit for digit) is kept as stored: the JSON is filtered as a SAX stream
// with numbers passed through raw.
//
// Thread-safety: ElementsSelection and TypeSubsetter are immutable after construction.

#ifndef FHIRBULK_WORKER_ELEMENTS_H_
#define FHIRBULK_WORKER_ELEMENTS_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace fhirbulk {

// The mandatory top-level elements of an R4 type, choice elements as "name[x]"
// (Observation: status, code). Empty for types without any, or not in the table.
const std::vector<std::string_view>& MandatoryElements(std::string_view type);

// Subsets resources of one type.
class TypeSubsetter {
 public:
  // `elements`: the names requested for this type (bare, without "Type."), mandatory ones
  // are added here.
  TypeSubsetter(std::string type, const std::vector<std::string>& elements);

  // Writes the subset of `json` (one resource of this type) to *out (replaced).
  // Corruption when json is not a JSON object.
  Status Apply(std::string_view json, std::string* out) const;

  // True when the top-level key is kept (exposed for tests).
  bool Keeps(std::string_view key) const;

  const std::string& type() const { return type_; }

 private:
  std::string type_;
  std::vector<std::string> names_;  // listed + mandatory, "[x]" stripped from choice names
};

// The _elements items of a request.
class ElementsSelection {
 public:
  explicit ElementsSelection(const std::vector<std::string>& items);

  bool empty() const { return bare_.empty() && typed_.empty(); }
  bool AppliesTo(std::string_view type) const;
  // The subsetter for `type`, or nullptr when _elements does not apply to it.
  std::unique_ptr<TypeSubsetter> ForType(std::string_view type) const;

 private:
  std::vector<std::string> bare_;
  std::vector<std::pair<std::string, std::string>> typed_;  // (type, element)
};

}  // namespace fhirbulk

#endif  // FHIRBULK_WORKER_ELEMENTS_H_
