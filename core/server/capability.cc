#include "server/capability.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace fhirbulk {

namespace {
// The date of this statement's content: changes when what we implement changes.
constexpr const char* kStatementDate = "2026-11-23";
constexpr const char* kBulkDataCapability =
    "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data";
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
  w.Key("documentation");
  w.String("Bulk data export engine under construction: the export operations are listed here "
           "once they are served.");
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace fhirbulk
