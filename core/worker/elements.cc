#include "worker/elements.h"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <map>

namespace fhirbulk {

namespace {

constexpr std::string_view kSubsettedSystem =
    "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";
constexpr std::string_view kSubsettedCode = "SUBSETTED";

// Top-level elements with min >= 1 in the R4 (4.0.1) StructureDefinitions of the Patient
// compartment types, the supporting types and a few common others. "[x]": choice element.
const std::map<std::string_view, std::vector<std::string_view>>& MandatoryTable() {
  static const auto* table = new std::map<std::string_view, std::vector<std::string_view>>{
      {"Account", {"status"}},
      {"AdverseEvent", {"actuality", "subject"}},
      {"AllergyIntolerance", {"patient"}},
      {"Appointment", {"status", "participant"}},
      {"AppointmentResponse", {"appointment", "participantStatus"}},
      {"AuditEvent", {"type", "recorded", "agent", "source"}},
      {"Basic", {"code"}},
      {"Binary", {"contentType"}},
      {"BodyStructure", {"patient"}},
      {"CarePlan", {"status", "intent", "subject"}},
      {"ChargeItem", {"status", "code", "subject"}},
      {"Claim",
       {"status", "type", "use", "patient", "created", "provider", "priority", "insurance"}},
      {"ClaimResponse", {"status", "type", "use", "patient", "created", "insurer", "outcome"}},
      {"ClinicalImpression", {"status", "subject"}},
      {"Communication", {"status"}},
      {"CommunicationRequest", {"status"}},
      {"Composition", {"status", "type", "date", "author", "title"}},
      {"Condition", {"subject"}},
      {"Consent", {"status", "scope", "category"}},
      {"Coverage", {"status", "beneficiary", "payor"}},
      {"CoverageEligibilityRequest", {"status", "purpose", "patient", "created", "insurer"}},
      {"CoverageEligibilityResponse",
       {"status", "purpose", "patient", "created", "request", "outcome", "insurer"}},
      {"DetectedIssue", {"status"}},
      {"DeviceRequest", {"intent", "code[x]", "subject"}},
      {"DeviceUseStatement", {"status", "subject", "device"}},
      {"DiagnosticReport", {"status", "code"}},
      {"DocumentManifest", {"status", "content"}},
      {"DocumentReference", {"status", "content"}},
      {"Encounter", {"status", "class"}},
      {"EpisodeOfCare", {"status", "patient"}},
      {"ExplanationOfBenefit",
       {"status", "type", "use", "patient", "created", "insurer", "provider", "outcome",
        "insurance"}},
      {"FamilyMemberHistory", {"status", "patient", "relationship"}},
      {"Flag", {"status", "code", "subject"}},
      {"Goal", {"lifecycleStatus", "description", "subject"}},
      {"Group", {"type", "actual"}},
      {"ImagingStudy", {"status", "subject"}},
      {"Immunization", {"status", "vaccineCode", "patient", "occurrence[x]"}},
      {"ImmunizationEvaluation",
       {"status", "patient", "targetDisease", "immunizationEvent", "doseStatus"}},
      {"ImmunizationRecommendation", {"patient", "date", "recommendation"}},
      {"Invoice", {"status"}},
      {"List", {"status", "mode"}},
      {"MeasureReport", {"status", "type", "measure", "period"}},
      {"Media", {"status", "content"}},
      {"MedicationAdministration", {"status", "medication[x]", "subject", "effective[x]"}},
      {"MedicationDispense", {"status", "medication[x]"}},
      {"MedicationRequest", {"status", "intent", "medication[x]", "subject"}},
      {"MedicationStatement", {"status", "medication[x]", "subject"}},
      {"MolecularSequence", {"coordinateSystem"}},
      {"NutritionOrder", {"status", "intent", "patient", "dateTime"}},
      {"Observation", {"status", "code"}},
      {"Procedure", {"status", "subject"}},
      {"Provenance", {"target", "recorded", "agent"}},
      {"QuestionnaireResponse", {"status"}},
      {"RelatedPerson", {"patient"}},
      {"RequestGroup", {"status", "intent"}},
      {"ResearchSubject", {"status", "study", "individual"}},
      {"RiskAssessment", {"status", "subject"}},
      {"Schedule", {"actor"}},
      {"ServiceRequest", {"status", "intent", "subject"}},
      {"SupplyRequest", {"item[x]", "quantity"}},
      {"Task", {"status", "intent"}},
      {"VisionPrescription",
       {"status", "created", "patient", "dateWritten", "prescriber", "lensSpecification"}},
      // No mandatory top-level elements: CareTeam, Device, EnrollmentRequest, Location,
      // Medication, Organization, Patient, Person, Practitioner, PractitionerRole, Specimen,
      // SupplyDelivery.
  };
  return *table;
}

// The R4 data types a choice element can take, as they appear in JSON keys (valueQuantity).
bool IsChoiceTypeSuffix(std::string_view s) {
  static constexpr std::string_view kTypes[] = {"Address",
                                                "Age",
                                                "Annotation",
                                                "Attachment",
                                                "Base64Binary",
                                                "Boolean",
                                                "Canonical",
                                                "Code",
                                                "CodeableConcept",
                                                "Coding",
                                                "ContactDetail",
                                                "ContactPoint",
                                                "Contributor",
                                                "Count",
                                                "DataRequirement",
                                                "Date",
                                                "DateTime",
                                                "Decimal",
                                                "Distance",
                                                "Dosage",
                                                "Duration",
                                                "Expression",
                                                "HumanName",
                                                "Id",
                                                "Identifier",
                                                "Instant",
                                                "Integer",
                                                "Markdown",
                                                "Meta",
                                                "Money",
                                                "Oid",
                                                "ParameterDefinition",
                                                "Period",
                                                "PositiveInt",
                                                "Quantity",
                                                "Range",
                                                "Ratio",
                                                "Reference",
                                                "RelatedArtifact",
                                                "SampledData",
                                                "Signature",
                                                "String",
                                                "Time",
                                                "Timing",
                                                "TriggerDefinition",
                                                "UnsignedInt",
                                                "Uri",
                                                "Url",
                                                "UsageContext",
                                                "Uuid"};
  for (std::string_view t : kTypes) {
    if (s == t) return true;
  }
  return false;
}

bool NameMatchesKey(std::string_view name, std::string_view key) {
  if (!key.empty() && key[0] == '_') key.remove_prefix(1);  // primitive extensions
  if (key == name) return true;
  return key.size() > name.size() && key.substr(0, name.size()) == name &&
         IsChoiceTypeSuffix(key.substr(name.size()));
}

std::string StripChoiceMarker(std::string_view name) {
  if (name.size() > 3 && name.substr(name.size() - 3) == "[x]") name.remove_suffix(3);
  return std::string(name);
}

// Appends to a std::string; the RapidJSON OutputStream concept.
class StringOutput {
 public:
  typedef char Ch;
  explicit StringOutput(std::string* s) : s_(s) {}
  void Put(char c) { s_->push_back(c); }
  void Flush() {}

 private:
  std::string* s_;
};

using JsonWriter = rapidjson::Writer<StringOutput>;

// SAX handler: forwards the kept top-level members to the writer and adds the SUBSETTED tag.
class SubsetHandler {
 public:
  SubsetHandler(const TypeSubsetter* subsetter, JsonWriter* w) : subsetter_(subsetter), w_(w) {}

  bool Null() {
    return Scalar([&] { return w_->Null(); });
  }
  bool Bool(bool b) {
    return Scalar([&] { return w_->Bool(b); });
  }
  bool Int(int i) {
    return Scalar([&] { return w_->Int(i); });
  }
  bool Uint(unsigned u) {
    return Scalar([&] { return w_->Uint(u); });
  }
  bool Int64(int64_t i) {
    return Scalar([&] { return w_->Int64(i); });
  }
  bool Uint64(uint64_t u) {
    return Scalar([&] { return w_->Uint64(u); });
  }
  bool Double(double d) {
    return Scalar([&] { return w_->Double(d); });
  }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    return Scalar([&] { return w_->RawValue(s, n, rapidjson::kNumberType); });  // verbatim
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (depth_ == 4 && in_tag_array_ && !skipping_) {
      std::string_view v(s, n);
      if (last_key_ == "system") coding_system_match_ = v == kSubsettedSystem;
      if (last_key_ == "code") coding_code_match_ = v == kSubsettedCode;
    }
    return Scalar([&] { return w_->String(s, n); });
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    std::string_view key(s, n);
    if (skipping_) return true;
    if (depth_ == 1) {
      if (!subsetter_->Keeps(key)) {
        skipping_ = true;
        return true;
      }
      entering_meta_ = key == "meta";
    } else if (depth_ == 2 && in_meta_) {
      entering_tag_ = key == "tag";
    } else if (depth_ == 4 && in_tag_array_) {
      last_key_ = std::string(key);
    }
    return w_->Key(s, n);
  }
  bool StartObject() {
    depth_++;
    if (skipping_) return true;
    if (depth_ == 1) {
      root_seen_ = true;
    } else if (depth_ == 2 && entering_meta_) {
      in_meta_ = true;
    } else if (depth_ == 4 && in_tag_array_) {
      coding_system_match_ = coding_code_match_ = false;
      last_key_.clear();
    }
    entering_meta_ = false;
    entering_tag_ = false;
    return w_->StartObject();
  }
  bool EndObject(rapidjson::SizeType) {
    if (skipping_) return Close();
    if (depth_ == 4 && in_tag_array_ && coding_system_match_ && coding_code_match_) {
      tag_present_ = true;
    }
    if (depth_ == 2 && in_meta_) {
      if (!tag_written_) {  // meta without tag
        w_->Key("tag");
        w_->StartArray();
        WriteCoding();
        w_->EndArray();
      }
      in_meta_ = false;
      meta_written_ = true;
    }
    if (depth_ == 1 && !meta_written_) {  // resource without meta
      w_->Key("meta");
      w_->StartObject();
      w_->Key("tag");
      w_->StartArray();
      WriteCoding();
      w_->EndArray();
      w_->EndObject();
    }
    depth_--;
    return w_->EndObject();
  }
  bool StartArray() {
    depth_++;
    if (skipping_) return true;
    if (depth_ == 3 && entering_tag_ && in_meta_) in_tag_array_ = true;
    entering_meta_ = false;
    entering_tag_ = false;
    return w_->StartArray();
  }
  bool EndArray(rapidjson::SizeType) {
    if (skipping_) return Close();
    if (depth_ == 3 && in_tag_array_) {
      if (!tag_present_) WriteCoding();
      in_tag_array_ = false;
      tag_written_ = true;
    }
    depth_--;
    return w_->EndArray();
  }

  bool root_seen() const { return root_seen_; }

 private:
  template <typename F>
  bool Scalar(F&& write) {
    if (depth_ == 0) return false;  // the root must be an object
    entering_meta_ = false;
    entering_tag_ = false;
    if (skipping_) {
      if (depth_ == 1) skipping_ = false;  // the skipped member was this scalar
      return true;
    }
    return write();
  }
  // End of a container inside a skipped member.
  bool Close() {
    depth_--;
    if (depth_ == 1) skipping_ = false;
    return true;
  }
  void WriteCoding() {
    w_->StartObject();
    w_->Key("system");
    w_->String(kSubsettedSystem.data(), static_cast<rapidjson::SizeType>(kSubsettedSystem.size()));
    w_->Key("code");
    w_->String(kSubsettedCode.data(), static_cast<rapidjson::SizeType>(kSubsettedCode.size()));
    w_->EndObject();
  }

  const TypeSubsetter* subsetter_;
  JsonWriter* w_;
  int depth_ = 0;
  bool root_seen_ = false;
  bool skipping_ = false;
  bool entering_meta_ = false;  // the next value is the root's meta
  bool entering_tag_ = false;   // the next value is meta.tag
  bool in_meta_ = false;
  bool in_tag_array_ = false;
  bool tag_present_ = false;  // meta.tag already holds SUBSETTED
  bool tag_written_ = false;
  bool meta_written_ = false;
  std::string last_key_;
  bool coding_system_match_ = false;
  bool coding_code_match_ = false;
};

}  // namespace

const std::vector<std::string_view>& MandatoryElements(std::string_view type) {
  static const std::vector<std::string_view> kNone;
  const auto& table = MandatoryTable();
  auto it = table.find(type);
  return it == table.end() ? kNone : it->second;
}

TypeSubsetter::TypeSubsetter(std::string type, const std::vector<std::string>& elements)
    : type_(std::move(type)) {
  for (const std::string& e : elements) names_.push_back(StripChoiceMarker(e));
  for (std::string_view m : MandatoryElements(type_)) names_.push_back(StripChoiceMarker(m));
  std::sort(names_.begin(), names_.end());
  names_.erase(std::unique(names_.begin(), names_.end()), names_.end());
}

bool TypeSubsetter::Keeps(std::string_view key) const {
  static constexpr std::string_view kAlways[] = {
      "resourceType", "id", "_id", "meta", "implicitRules", "_implicitRules", "modifierExtension"};
  for (std::string_view a : kAlways) {
    if (key == a) return true;
  }
  for (const std::string& n : names_) {
    if (NameMatchesKey(n, key)) return true;
  }
  return false;
}

Status TypeSubsetter::Apply(std::string_view json, std::string* out) const {
  out->clear();
  out->reserve(json.size());
  StringOutput os(out);
  JsonWriter writer(os);
  SubsetHandler handler(this, &writer);
  rapidjson::MemoryStream in(json.data(), json.size());
  rapidjson::Reader reader;
  constexpr unsigned kFlags =
      rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseStopWhenDoneFlag;
  rapidjson::ParseResult ok = reader.Parse<kFlags>(in, handler);
  if (!ok || !handler.root_seen() || !writer.IsComplete()) {
    out->clear();
    return Status::Corruption(type_ + " resource is not a JSON object (offset " +
                              std::to_string(ok.Offset()) + ")");
  }
  return Status::OK();
}

ElementsSelection::ElementsSelection(const std::vector<std::string>& items) {
  for (const std::string& item : items) {
    size_t dot = item.find('.');
    if (dot == std::string::npos) {
      bare_.push_back(item);
    } else {
      typed_.emplace_back(item.substr(0, dot), item.substr(dot + 1));
    }
  }
}

bool ElementsSelection::AppliesTo(std::string_view type) const {
  if (!bare_.empty()) return true;
  for (const auto& t : typed_) {
    if (t.first == type) return true;
  }
  return false;
}

std::unique_ptr<TypeSubsetter> ElementsSelection::ForType(std::string_view type) const {
  if (!AppliesTo(type)) return nullptr;
  std::vector<std::string> names = bare_;
  for (const auto& t : typed_) {
    if (t.first == type) names.push_back(t.second);
  }
  return std::make_unique<TypeSubsetter>(std::string(type), std::move(names));
}

}  // namespace fhirbulk
