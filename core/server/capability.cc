#include "server/capability.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <string_view>

#include "fhir/resource_types.h"
#include "fhir/search_params.h"

namespace fhirbulk {

namespace {
// The date of this statement's content: changes when what we implement changes.
constexpr const char* kStatementDate = "2026-11-23";
constexpr const char* kBulkDataCapability =
    "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data";
constexpr const char* kOpBase = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/";

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Operation(Writer& w, const char* name, const char* definition) {
  w.StartObject();
  w.Key("name");
  w.String(name);
  w.Key("definition");
  w.String(std::string(kOpBase) + definition);
  w.EndObject();
}

const char* KindName(SearchParamKind kind) {
  switch (kind) {
    case SearchParamKind::kToken:
      return "token";
    case SearchParamKind::kUri:
      return "uri";
    case SearchParamKind::kReference:
      return "reference";
    case SearchParamKind::kDate:
    case SearchParamKind::kLastUpdated:
      return "date";
    case SearchParamKind::kId:
      return "token";
  }
  return "token";
}

void SearchParam(Writer& w, const SearchParamDef& def) {
  w.StartObject();
  w.Key("name");
  w.String(def.code.data(), static_cast<rapidjson::SizeType>(def.code.size()));
  w.Key("type");
  w.String(KindName(def.kind));
  w.EndObject();
}

// The Group API (server/group_api.h): interactions, the Bulk Cohort profile, and what its
// member-filter expressions may use.
void WriteGroupApi(Writer& w) {
  w.Key("documentation");
  w.String(
      "Group API: read, search (name, name:exact, _id, _count, _offset, _summary=count), "
      "create, update and delete of Groups of patients (type person); a client sees the Groups "
      "it created and the loaded Groups its registration allows. Member-based Groups list "
      "Patient members (at most 100000). Criteria-based Groups (Bulk Cohort API, "
      "bulk-cohort-group profile): POST with Prefer: respond-async (202, then the status URL "
      "answers 201 with the Group) and 1 to 8 member-filter modifier extensions, ANDed; each "
      "is one search over Patient or a Patient-compartment type using the searchParam entries "
      "listed for that type (the _typeFilter parameters). Membership is computed when the Group "
      "is created or updated (members-refreshed extension) and stored as Group.member; an "
      "export reads that membership. Evaluation is bounded by a 20 s statement timeout.");
  w.Key("interaction");
  w.StartArray();
  for (const char* code : {"read", "search-type", "create", "update", "delete"}) {
    w.StartObject();
    w.Key("code");
    w.String(code);
    w.EndObject();
  }
  w.EndArray();
  w.Key("supportedProfile");
  w.StartArray();
  w.String("http://hl7.org/fhir/uv/bulkdata/StructureDefinition/bulk-cohort-group");
  w.EndArray();
}
// IG 3.0.0 (STU3) parameters of the worker (worker/patient_blocks.h).
constexpr const char* kStu3ExportDocumentation =
    "IG 3.0.0 (STU3): organizeOutputBy=Patient (files of patient blocks: a Parameters header "
    "line naming Patient/<id>, the Patient, then the resources of its compartment; a block "
    "larger than a file continues in the next one, linked by continuesInFile; resources of no "
    "patient, such as the referenced Practitioner, Organization, Location and Medication, are "
    "in files without headers); includeAssociatedData=LatestProvenanceResources and "
    "RelevantProvenanceResources (the Provenance whose target is an exported resource); "
    "without it, every Provenance (system level) or those of the patients' compartments "
    "(Patient and Group level) unless _type leaves Provenance out. Custom (_-prefixed) "
    "includeAssociatedData values and other organizeOutputBy types are not supported.";

// Exportable types, each with the search parameters _typeFilter supports for it; the
// Patient and Group operations (listed under both spellings, spec digest §7); the system
// export; and how this server exports.
void WriteExportRest(Writer& w) {
  w.Key("documentation");
  w.String(
      "Bulk Data export (IG 3.0.0 STU3; v2.0.0 clients work unchanged) at system, Patient and "
      "Group level, GET and POST. "
      "Parameters: _outputFormat (application/fhir+ndjson, application/ndjson, ndjson), _since, "
      "_until, _type, _elements, patient (POST, Patient and Group level), _typeFilter (the "
      "searchParam entries of each resource below; token, reference, date with eq/ne/gt/lt/ge/"
      "le, _id, _lastUpdated). Patient and Group exports add the Practitioner, Organization, "
      "Location and Medication resources the exported resources reference. Group exports use "
      "the group's active members (member.inactive and member.period honoured) and, with "
      "_since, only resources changed since then. Files are split at a configured size; "
      "each file holds one resource type. "
      "allowPartialManifests (boolean): while the export runs, polls answer 202 with a "
      "manifest of the files already complete; manifests are paged with link relation next "
      "(a fixed number of files per page, pages never change). Prefer: respond-async, "
      "separate-export-status is applied (Preference-Applied; polls answer 200 with "
      "X-Export-Status). Kick-offs need an Accept that admits application/fhir+json. At "
      "Patient and Group level, _type types outside the Patient compartment are ignored with "
      "a warning in the manifest's error files. " +
      std::string(kStu3ExportDocumentation));
  w.Key("resource");
  w.StartArray();
  for (std::string_view type : R4ResourceTypes()) {
    w.StartObject();
    w.Key("type");
    w.String(type.data(), static_cast<rapidjson::SizeType>(type.size()));
    if (type == "Patient" || type == "Group") {
      w.Key("operation");
      w.StartArray();
      bool patient = type == "Patient";
      Operation(w, "export", patient ? "patient-export" : "group-export");
      Operation(w, patient ? "patient-export" : "group-export",
                patient ? "patient-export" : "group-export");
      w.EndArray();
    }
    if (type == "Group") WriteGroupApi(w);
    w.Key("searchParam");
    w.StartArray();
    if (type == "Group") {
      // The Group API's own search (server/group_api.h); the rest are _typeFilter's.
      w.StartObject();
      w.Key("name");
      w.String("name");
      w.Key("type");
      w.String("string");
      w.EndObject();
    }
    for (const SearchParamDef& def : SearchParamsForType(type)) SearchParam(w, def);
    for (const SearchParamDef& def : CommonSearchParams()) SearchParam(w, def);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.Key("operation");
  w.StartArray();
  Operation(w, "export", "export");
  w.EndArray();
}

// SMART App Launch 2.0 still describes this section (deprecated in favour of
// .well-known/smart-configuration, which is authoritative); older clients read it.
void WriteSecurity(Writer& w, const std::string& token_url) {
  w.Key("security");
  w.StartObject();
  w.Key("service");
  w.StartArray();
  w.StartObject();
  w.Key("coding");
  w.StartArray();
  w.StartObject();
  w.Key("system");
  w.String("http://terminology.hl7.org/CodeSystem/restful-security-service");
  w.Key("code");
  w.String("SMART-on-FHIR");
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.Key("extension");
  w.StartArray();
  w.StartObject();
  w.Key("url");
  w.String("http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris");
  w.Key("extension");
  w.StartArray();
  w.StartObject();
  w.Key("url");
  w.String("token");
  w.Key("valueUri");
  w.String(token_url);
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.EndObject();
}

}  // namespace

std::string CapabilityStatementJson(const CapabilityOptions& o) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("resourceType");
  w.String("CapabilityStatement");
  w.Key("status");
  w.String("active");
  w.Key("date");
  w.String(kStatementDate);
  w.Key("publisher");
  w.String("ngx_fhir_bulk");
  w.Key("kind");
  w.String("instance");
  w.Key("instantiates");
  w.StartArray();
  w.String(kBulkDataCapability);
  w.EndArray();
  w.Key("software");
  w.StartObject();
  w.Key("name");
  w.String("ngx_fhir_bulk");
  w.Key("version");
  w.String(o.software_version);
  w.EndObject();
  w.Key("implementation");
  w.StartObject();
  w.Key("description");
  w.String("FHIR Bulk Data Access (Flat FHIR) server, an nginx module");
  w.Key("url");
  w.String(o.base_url);
  w.EndObject();
  w.Key("fhirVersion");
  w.String("4.0.1");
  w.Key("format");
  w.StartArray();
  w.String("json");
  w.String("application/fhir+json");
  w.EndArray();
  w.Key("rest");
  w.StartArray();
  w.StartObject();
  w.Key("mode");
  w.String("server");
  if (!o.token_url.empty()) WriteSecurity(w, o.token_url);
  if (o.exports) {
    WriteExportRest(w);
  } else {
    w.Key("documentation");
    w.String("No export directory is configured: this server does not serve $export.");
  }
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string SmartConfigurationJson(const std::string& token_url) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  auto strings = [&w](const char* key, std::initializer_list<const char*> values) {
    w.Key(key);
    w.StartArray();
    for (const char* v : values) w.String(v);
    w.EndArray();
  };
  w.StartObject();
  w.Key("token_endpoint");
  w.String(token_url);
  strings("grant_types_supported", {"client_credentials"});
  strings("token_endpoint_auth_methods_supported", {"private_key_jwt"});
  strings("token_endpoint_auth_signing_alg_values_supported", {"RS384", "ES384"});
  strings("scopes_supported",
          {"system/*.read", "system/*.rs", "system/*.r", "system/Patient.read", "system/Patient.rs",
           "system/Group.read", "system/Group.rs", "system/Group.write", "system/Group.cud"});
  strings("capabilities", {"client-confidential-asymmetric", "permission-v1", "permission-v2"});
  strings("code_challenge_methods_supported", {"S256"});
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace fhirbulk
