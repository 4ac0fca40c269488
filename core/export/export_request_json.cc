// The job store's form of an ExportRequest (export_request.h: ExportRequestToJson,
// ExportRequestFromJson): compact JSON that any worker reads back exactly.

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "export/export_request.h"
#include "export/kickoff_util.h"

namespace fhirbulk {

namespace {

using kickoff::Quoted;

const char* LevelName(ExportLevel level) {
  switch (level) {
    case ExportLevel::kSystem:
      return "system";
    case ExportLevel::kPatient:
      return "patient";
    case ExportLevel::kGroup:
      return "group";
  }
  return "system";
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteStrings(Writer* w, const char* key, const std::vector<std::string>& values) {
  w->Key(key);
  w->StartArray();
  for (const std::string& v : values) w->String(v.data(), static_cast<unsigned>(v.size()));
  w->EndArray();
}

void WriteString(Writer* w, const char* key, const std::string& value) {
  w->Key(key);
  w->String(value.data(), static_cast<unsigned>(value.size()));
}

Status Malformed(std::string_view what) {
  return Status::Corruption("export request JSON: " + std::string(what));
}

Status ReadString(const rapidjson::Value& obj, const char* key, std::string* out) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) {
    return Malformed(std::string(key) + " is not a string");
  }
  out->assign(it->value.GetString(), it->value.GetStringLength());
  return Status::OK();
}

Status ReadStrings(const rapidjson::Value& obj, const char* key, std::vector<std::string>* out) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsArray()) {
    return Malformed(std::string(key) + " is not an array");
  }
  out->clear();
  for (const rapidjson::Value& v : it->value.GetArray()) {
    if (!v.IsString()) return Malformed(std::string(key) + " holds a non-string");
    out->emplace_back(v.GetString(), v.GetStringLength());
  }
  return Status::OK();
}

Status ReadOptionalInt64(const rapidjson::Value& obj, const char* key,
                         std::optional<int64_t>* out) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) {
    out->reset();
    return Status::OK();
  }
  if (!it->value.IsInt64()) return Malformed(std::string(key) + " is not an integer");
  *out = it->value.GetInt64();
  return Status::OK();
}

}  // namespace

std::string ExportRequestToJson(const ExportRequest& r) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("level");
  w.String(LevelName(r.level));
  WriteString(&w, "group_id", r.group_id);
  WriteString(&w, "output_format", r.output_format);
  w.Key("since_us");
  r.since_us ? w.Int64(*r.since_us) : w.Null();
  w.Key("until_us");
  r.until_us ? w.Int64(*r.until_us) : w.Null();
  WriteStrings(&w, "types", r.types);
  WriteStrings(&w, "elements", r.elements);
  WriteStrings(&w, "patients", r.patients);
  WriteStrings(&w, "include_associated_data", r.include_associated_data);
  if (!r.organize_output_by.empty()) WriteString(&w, "organize_output_by", r.organize_output_by);
  w.Key("type_filters");
  w.StartArray();
  for (const TypeFilterQuery& q : r.type_filters) {
    w.StartObject();
    WriteString(&w, "type", q.type);
    w.Key("criteria");
    w.StartArray();
    for (const FilterCriterion& c : q.criteria) {
      w.StartObject();
      WriteString(&w, "param", c.param);
      WriteString(&w, "modifier", c.modifier);
      WriteStrings(&w, "values", c.values);
      WriteStrings(&w, "prefixes", c.prefixes);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.Key("lenient");
  w.Bool(r.lenient);
  w.Key("ignored");
  w.StartArray();
  for (const OutcomeIssue& i : r.ignored) {
    w.StartObject();
    WriteString(&w, "severity", i.severity);
    WriteString(&w, "code", i.code);
    WriteString(&w, "diagnostics", i.diagnostics);
    WriteString(&w, "expression", i.expression);
    w.EndObject();
  }
  w.EndArray();
  WriteString(&w, "request_url", r.request_url);
  // Written only when set, so the JSON of jobs without them (and of older jobs) is unchanged.
  if (r.allow_partial_manifests) {
    w.Key("allow_partial_manifests");
    w.Bool(true);
  }
  if (r.separate_export_status) {
    w.Key("separate_export_status");
    w.Bool(true);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<ExportRequest> ExportRequestFromJson(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return Malformed("not a JSON object");
  ExportRequest r;
  std::string level;
  FHIRBULK_RETURN_IF_ERROR(ReadString(doc, "level", &level));
  if (level == "system") {
    r.level = ExportLevel::kSystem;
  } else if (level == "patient") {
    r.level = ExportLevel::kPatient;
  } else if (level == "group") {
    r.level = ExportLevel::kGroup;
  } else {
    return Malformed("unknown level " + Quoted(level));
  }
  FHIRBULK_RETURN_IF_ERROR(ReadString(doc, "group_id", &r.group_id));
  FHIRBULK_RETURN_IF_ERROR(ReadString(doc, "output_format", &r.output_format));
  FHIRBULK_RETURN_IF_ERROR(ReadOptionalInt64(doc, "since_us", &r.since_us));
  FHIRBULK_RETURN_IF_ERROR(ReadOptionalInt64(doc, "until_us", &r.until_us));
  FHIRBULK_RETURN_IF_ERROR(ReadStrings(doc, "types", &r.types));
  FHIRBULK_RETURN_IF_ERROR(ReadStrings(doc, "elements", &r.elements));
  FHIRBULK_RETURN_IF_ERROR(ReadStrings(doc, "patients", &r.patients));
  FHIRBULK_RETURN_IF_ERROR(ReadStrings(doc, "include_associated_data", &r.include_associated_data));
  if (doc.HasMember("organize_output_by")) {  // absent in jobs stored before STU3 support
    FHIRBULK_RETURN_IF_ERROR(ReadString(doc, "organize_output_by", &r.organize_output_by));
  }
  auto filters = doc.FindMember("type_filters");
  if (filters == doc.MemberEnd() || !filters->value.IsArray()) {
    return Malformed("type_filters is not an array");
  }
  for (const rapidjson::Value& fq : filters->value.GetArray()) {
    if (!fq.IsObject()) return Malformed("type_filters holds a non-object");
    TypeFilterQuery q;
    FHIRBULK_RETURN_IF_ERROR(ReadString(fq, "type", &q.type));
    auto criteria = fq.FindMember("criteria");
    if (criteria == fq.MemberEnd() || !criteria->value.IsArray()) {
      return Malformed("criteria is not an array");
    }
    for (const rapidjson::Value& fc : criteria->value.GetArray()) {
      if (!fc.IsObject()) return Malformed("criteria holds a non-object");
      FilterCriterion c;
      FHIRBULK_RETURN_IF_ERROR(ReadString(fc, "param", &c.param));
      FHIRBULK_RETURN_IF_ERROR(ReadString(fc, "modifier", &c.modifier));
      FHIRBULK_RETURN_IF_ERROR(ReadStrings(fc, "values", &c.values));
      FHIRBULK_RETURN_IF_ERROR(ReadStrings(fc, "prefixes", &c.prefixes));
      q.criteria.push_back(std::move(c));
    }
    r.type_filters.push_back(std::move(q));
  }
  auto lenient = doc.FindMember("lenient");
  if (lenient == doc.MemberEnd() || !lenient->value.IsBool()) {
    return Malformed("lenient is not a boolean");
  }
  r.lenient = lenient->value.GetBool();
  auto ignored = doc.FindMember("ignored");
  if (ignored == doc.MemberEnd() || !ignored->value.IsArray()) {
    return Malformed("ignored is not an array");
  }
  for (const rapidjson::Value& fi : ignored->value.GetArray()) {
    if (!fi.IsObject()) return Malformed("ignored holds a non-object");
    OutcomeIssue issue;
    FHIRBULK_RETURN_IF_ERROR(ReadString(fi, "severity", &issue.severity));
    FHIRBULK_RETURN_IF_ERROR(ReadString(fi, "code", &issue.code));
    FHIRBULK_RETURN_IF_ERROR(ReadString(fi, "diagnostics", &issue.diagnostics));
    FHIRBULK_RETURN_IF_ERROR(ReadString(fi, "expression", &issue.expression));
    r.ignored.push_back(std::move(issue));
  }
  FHIRBULK_RETURN_IF_ERROR(ReadString(doc, "request_url", &r.request_url));
  for (auto [key, flag] : {std::pair{"allow_partial_manifests", &r.allow_partial_manifests},
                           std::pair{"separate_export_status", &r.separate_export_status}}) {
    auto it = doc.FindMember(key);
    if (it == doc.MemberEnd()) continue;  // absent: false (jobs from before issue 13)
    if (!it->value.IsBool()) return Malformed(std::string(key) + " is not a boolean");
    *flag = it->value.GetBool();
  }
  return r;
}

}  // namespace fhirbulk
