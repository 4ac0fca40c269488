#include "client/ndjson_validator.h"

#include <rapidjson/document.h>
#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cstring>

#include "client/bounded_json.h"

namespace fhirbulk {
namespace client {

namespace {

constexpr size_t kMaxSamples = 5;

// SAX handler that keeps the top-level resourceType and whether the root is an object;
// the parse itself checks the JSON (and UTF-8) without building a DOM.
struct TopLevel : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, TopLevel> {
  int depth = 0;
  bool too_deep = false;
  bool root_is_object = false;
  bool next_is_type = false;
  bool has_type = false;
  bool type_is_string = false;
  std::string type;

  bool Default() {
    if (next_is_type) has_type = true;  // present, but not a string
    next_is_type = false;
    return true;
  }
  bool String(const char* s, rapidjson::SizeType len, bool) {
    if (next_is_type) {
      has_type = type_is_string = true;
      type.assign(s, len);
    }
    next_is_type = false;
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType len, bool) {
    next_is_type = depth == 1 && len == 12 && std::memcmp(s, "resourceType", 12) == 0;
    return true;
  }
  bool StartObject() {
    if (depth == 0) root_is_object = true;
    Default();
    return Enter();
  }
  bool Enter() {
    if (++depth <= kMaxJsonDepth) return true;
    too_deep = true;
    return false;  // stops the parse
  }
  bool EndObject(rapidjson::SizeType) {
    depth--;
    return true;
  }
  bool StartArray() {
    Default();
    return Enter();
  }
  bool EndArray(rapidjson::SizeType) {
    depth--;
    return true;
  }
};

std::string Shorten(std::string s, size_t max) {
  if (s.size() > max) {
    s.resize(max);
    s += "...";
  }
  return s;
}

}  // namespace

NdjsonValidator::NdjsonValidator(std::string expected_type, std::optional<int64_t> expected_count,
                                 size_t max_issues, size_t max_line_bytes)
    : expected_type_(std::move(expected_type)),
      expected_count_(expected_count),
      max_issues_(max_issues),
      max_line_bytes_(max_line_bytes) {}

void NdjsonValidator::Reset() {
  pending_.clear();
  skipped_bytes_ = 0;
  lines_ = good_lines_ = error_count_ = 0;
  file_has_blocks_ = false;
  header_lines_ = lines_since_header_ = 0;
  current_patient_.clear();
  first_block_.clear();
  seen_headers_.clear();
  issues_.clear();
  severities_.clear();
  samples_.clear();
}

void NdjsonValidator::AddIssue(int64_t line, std::string message) {
  error_count_++;
  if (issues_.size() < max_issues_) issues_.push_back({line, std::move(message)});
}

void NdjsonValidator::Feed(std::string_view bytes) {
  while (!bytes.empty()) {
    const char* nl = static_cast<const char*>(std::memchr(bytes.data(), '\n', bytes.size()));
    const size_t len = nl == nullptr ? bytes.size() : static_cast<size_t>(nl - bytes.data());
    if (skipped_bytes_ > 0 || pending_.size() + len > max_line_bytes_) {
      // Over the limit: report the line once, then drop its bytes up to its end.
      if (skipped_bytes_ == 0) skipped_bytes_ = pending_.size();
      skipped_bytes_ += len;
      pending_.clear();
      pending_.shrink_to_fit();
      if (nl == nullptr) return;
      SkipLongLine();
      bytes.remove_prefix(len + 1);
      continue;
    }
    if (nl == nullptr) {
      pending_.append(bytes.data(), bytes.size());
      return;
    }
    if (pending_.empty()) {
      CheckLine(bytes.substr(0, len));  // the common case: no copy
    } else {
      pending_.append(bytes.data(), len);
      CheckLine(pending_);
      pending_.clear();
    }
    bytes.remove_prefix(len + 1);
  }
}

void NdjsonValidator::SkipLongLine() {
  const int64_t n = ++lines_;
  AddIssue(n, "line longer than " + std::to_string(max_line_bytes_) + " bytes (" +
                  std::to_string(skipped_bytes_) + "; --max-line-bytes)");
  skipped_bytes_ = 0;
}

void NdjsonValidator::Finish() {
  if (skipped_bytes_ > 0) SkipLongLine();
  if (!pending_.empty()) {
    CheckLine(pending_);
    pending_.clear();
  }
  if (expected_count_ && *expected_count_ != lines_ - header_lines_) {
    AddIssue(0, std::to_string(lines_ - header_lines_) +
                    (header_lines_ > 0 ? " resources" : " lines") +
                    ", but the manifest's count is " + std::to_string(*expected_count_));
  }
}

void NdjsonValidator::CheckLine(std::string_view line) {
  const int64_t n = ++lines_;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) {
    AddIssue(n, "empty line");
    return;
  }
  rapidjson::MemoryStream ms(line.data(), line.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> is(ms);
  rapidjson::Reader reader;
  TopLevel handler;
  rapidjson::ParseResult ok =
      reader.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(is,
                                                                                           handler);
  if (handler.too_deep) {
    AddIssue(n, "invalid JSON: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return;
  }
  if (!ok) {
    AddIssue(n, std::string("invalid JSON at byte ") + std::to_string(ok.Offset() + 1) + ": " +
                    rapidjson::GetParseError_En(ok.Code()));
    return;
  }
  if (is.Tell() != line.size()) {  // a NUL byte ended the parse early
    AddIssue(n, "invalid JSON: a NUL byte at byte " + std::to_string(is.Tell() + 1));
    return;
  }
  if (!handler.root_is_object) {
    AddIssue(n, "not a JSON object");
    return;
  }
  if (!handler.type_is_string) {
    AddIssue(n, handler.has_type ? "resourceType is not a string" : "no resourceType");
    return;
  }
  if (expected_type_.empty()) {
    CheckBlockLine(n, handler.type, line);
    return;
  }
  if (handler.type != expected_type_) {
    AddIssue(n, "resourceType '" + Shorten(handler.type, 64) + "' in a file of " + expected_type_);
    return;
  }
  good_lines_++;
  if (expected_type_ == "OperationOutcome") TallyOutcome(line);
}

void NdjsonValidator::CheckBlockLine(int64_t n, std::string_view type, std::string_view line) {
  constexpr size_t kMaxTrackedHeaders = 1000000;  // bounds memory on a hostile file
  if (type == "Parameters") {
    rapidjson::Document doc;
    std::string ref;
    if (ParseBoundedJson(line, &doc) && doc.IsObject()) {
      auto params = doc.FindMember("parameter");
      if (params != doc.MemberEnd() && params->value.IsArray() && params->value.Size() == 1) {
        const auto& p = params->value[0];
        auto name = p.FindMember("name");
        auto value = p.FindMember("valueReference");
        if (name != p.MemberEnd() && name->value.IsString() &&
            std::string_view(name->value.GetString()) == "header" && value != p.MemberEnd() &&
            value->value.IsObject()) {
          auto r = value->value.FindMember("reference");
          if (r != value->value.MemberEnd() && r->value.IsString()) ref = r->value.GetString();
        }
      }
    }
    if (ref.rfind("Patient/", 0) != 0 || ref.size() == 8) {
      AddIssue(n, "a Parameters line that is not a block header (header -> Patient/<id>)");
      return;
    }
    if (n == 1) file_has_blocks_ = true;
    if (!file_has_blocks_) {
      AddIssue(n, "a block header in a file that did not start with one");
      return;
    }
    header_lines_++;
    current_patient_ = ref.substr(8);
    if (header_lines_ == 1) first_block_ = current_patient_;
    lines_since_header_ = 0;
    if (!seen_headers_.insert(current_patient_).second) {
      AddIssue(n, "the block of " + Shorten(ref, 80) + " is split inside the file");
    }
    if (seen_headers_.size() > kMaxTrackedHeaders) seen_headers_.clear();
    return;
  }
  if (file_has_blocks_ && type == "Patient") {
    rapidjson::Document doc;
    std::string id;
    if (ParseBoundedJson(line, &doc) && doc.IsObject()) {
      auto it = doc.FindMember("id");
      if (it != doc.MemberEnd() && it->value.IsString()) id = it->value.GetString();
    }
    if (id != current_patient_) {
      AddIssue(n, "Patient/" + Shorten(id, 64) + " in the block of Patient/" +
                      Shorten(current_patient_, 64));
      return;
    }
    if (lines_since_header_ != 0) {
      AddIssue(n, "the Patient is not the first resource of its block");
      return;
    }
  }
  lines_since_header_++;
  good_lines_++;
}

void NdjsonValidator::TallyOutcome(std::string_view line) {
  rapidjson::Document doc;
  if (!ParseBoundedJson(line, &doc) || !doc.IsObject()) return;
  auto issues = doc.FindMember("issue");
  if (issues == doc.MemberEnd() || !issues->value.IsArray()) return;
  for (const auto& issue : issues->value.GetArray()) {
    if (!issue.IsObject()) continue;
    auto get = [&](const char* name) {
      auto it = issue.FindMember(name);
      return it != issue.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString())
                                                             : std::string();
    };
    std::string severity = get("severity");
    severities_[severity.empty() ? "unknown" : severity]++;
    if (samples_.size() < kMaxSamples) {
      std::string text = get("diagnostics");
      if (text.empty()) {
        auto details = issue.FindMember("details");
        if (details != issue.MemberEnd() && details->value.IsObject() &&
            details->value.HasMember("text") && details->value["text"].IsString()) {
          text = details->value["text"].GetString();
        }
      }
      samples_.push_back(severity + " " + get("code") + (text.empty() ? "" : ": ") +
                         Shorten(text, 200));
    }
  }
}

}  // namespace client
}  // namespace fhirbulk
