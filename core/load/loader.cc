#include "load/loader.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <unordered_map>
#include <unordered_set>

#include "db/pg.h"
#include "db/pg_copy.h"
#include "fhir/resource_index.h"
#include "fhir/resource_types.h"
#include "load/batch.h"
#include "load/batch_sink.h"
#include "load/bundle_resolver.h"
#include "load/input_file.h"
#include "load/parsed_json.h"
#include "load/resource_normalizer.h"
#include "util/progress.h"
#include "util/strings.h"

namespace fhirbulk {

uint64_t LoadReport::total_loaded() const {
  uint64_t n = 0;
  for (const auto& [type, c] : by_type) n += c.loaded;
  return n;
}
uint64_t LoadReport::total_unchanged() const {
  uint64_t n = 0;
  for (const auto& [type, c] : by_type) n += c.unchanged;
  return n;
}
uint64_t LoadReport::total_rejected() const {
  uint64_t n = 0;
  for (const auto& [type, c] : by_type) n += c.rejected;
  return n;
}
uint64_t LoadReport::total_deleted() const {
  uint64_t n = 0;
  for (const auto& [type, c] : by_type) n += c.deleted;
  return n;
}

namespace {

// Bundle entries held back for "last copy wins" (see loader.h), and bare resources waiting
// for urn:uuid targets: beyond these budgets they are written (resolved) early.
constexpr size_t kSharedBudget = 64 << 20;
constexpr size_t kBareBudget = 64 << 20;
// Batches queued for the database thread besides the one being written.
constexpr size_t kQueuedBatches = 2;

// Where an input came from, formatted only when something is rejected.
struct Where {
  std::string_view source;
  uint64_t line = 0;   // NDJSON line, 1-based; 0: a whole document
  int64_t entry = -1;  // Bundle.entry index
  std::string Location() const {
    std::string loc;
    if (line > 0) loc = "line " + std::to_string(line);
    if (entry >= 0) loc += (loc.empty() ? "" : " ") + std::string("entry ") + std::to_string(entry);
    return loc.empty() ? "document" : loc;
  }
};

enum class Mode { kResources, kDeletions };

std::string_view View(const rapidjson::Value& v) {
  return std::string_view(v.GetString(), v.GetStringLength());
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The file name without a .gz suffix, lowercased.
std::string BaseName(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (EndsWith(name, ".gz")) name.resize(name.size() - 3);
  return name;
}

bool IsGzipName(const std::string& path) { return EndsWith(path, ".gz"); }

bool IsNdjsonName(const std::string& path) {
  std::string name = BaseName(path);
  return EndsWith(name, ".ndjson") || EndsWith(name, ".jsonl");
}

bool IsInputName(const std::string& path) {
  return IsNdjsonName(path) || EndsWith(BaseName(path), ".json");
}

bool IsBlank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

bool Contains(std::string_view hay, std::string_view needle) {
  return memmem(hay.data(), hay.size(), needle.data(), needle.size()) != nullptr;
}

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

// PostgreSQL text cannot hold U+0000, which a JSON string may spell \u0000. The body re-escapes
// it; the index values must not contain it.
bool IndexHasNul(const ResourceIndex& index, const std::vector<GroupMemberEntry>& members) {
  for (const auto* list : {&index.patients, &index.tokens, &index.refs, &index.outrefs}) {
    for (const auto& s : *list) {
      if (HasNul(s)) return true;
    }
  }
  for (const auto& d : index.dates) {
    if (HasNul(d.param)) return true;
  }
  for (const auto& m : members) {
    if (HasNul(m.patient_id)) return true;
  }
  return false;
}

// The columns patients .. date_hi, outrefs of `resource` in binary COPY form.
void EncodeIndex(const ResourceIndex& index, std::string* out) {
  PgCopyEncoder enc(out);
  enc.TextArray(index.patients);
  enc.TextArray(index.tokens);
  enc.TextArray(index.refs);
  std::vector<std::string> params;
  std::vector<int64_t> lo, hi;
  params.reserve(index.dates.size());
  lo.reserve(index.dates.size());
  hi.reserve(index.dates.size());
  for (const auto& d : index.dates) {
    params.push_back(d.param);
    lo.push_back(d.lo_us);
    hi.push_back(d.hi_us);
  }
  enc.TextArray(params);
  enc.TimestampTzArray(lo);
  enc.TimestampTzArray(hi);
  enc.TextArray(index.outrefs);
}

// "Type/id" from a request.url: relative ("Patient/1") or absolute (".../Patient/1").
bool ParseTypeId(std::string_view url, std::string_view* type, std::string_view* id) {
  if (url.find('?') != std::string_view::npos) return false;  // conditional: not supported
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  size_t slash = url.rfind('/');
  if (slash == std::string_view::npos) return false;
  *id = url.substr(slash + 1);
  std::string_view rest = url.substr(0, slash);
  size_t before = rest.rfind('/');
  *type = before == std::string_view::npos ? rest : rest.substr(before + 1);
  return IsR4ResourceType(*type) && IsValidFhirId(*id);
}

}  // namespace

class Loader::Impl {
 public:
  Impl(const LoadOptions& options, std::unique_ptr<BatchSink> sink)
      : options_(options), progress_("load", "bytes", 0, options.progress), sink_(std::move(sink)) {
    if (options_.batch_resources == 0) options_.batch_resources = 1;
  }

  Status AddPaths(const std::vector<std::string>& paths);
  Status AddDeletionsFile(const std::string& path);
  Status AddResourceJson(std::string_view json, std::string_view source, uint64_t line);
  Status Delete(std::string_view type, std::string_view id);
  Status Finish(LoadReport* report);

 private:
  Status ProcessFile(const std::string& path, Mode mode);
  Status ProcessText(std::string_view text, const Where& where, Mode mode);
  Status ProcessParsed(const Where& where, Mode mode, bool has_urn_uuid);
  Status ProcessBundle(rapidjson::Value* bundle, const Where& where, Mode mode);
  Status ProcessBare(rapidjson::Value* resource, const Where& where, bool has_urn_uuid);
  Status DeleteFromJson(const rapidjson::Value& resource, const Where& where);
  Status AddResource(ParsedJson* json, rapidjson::Value* resource, const Where& where,
                     bool bundle_entry, bool* accepted);
  Status DoDelete(std::string_view type, std::string_view id, const Where& where);
  Status Enqueue(PendingWrite write, bool hold_back);
  Status AddToBatch(PendingWrite write, std::string key);
  Status FlushBatch();
  Status FlushHeldBack();
  void DropHeldBack(const std::string& key);
  Status ResolveWaitingBare();
  Status Reject(std::string_view type, const Where& where, std::string reason);
  void CountUnchanged(const std::string& type) { report_.by_type[type].unchanged++; }
  std::string ReportType(const ParsedJson& json, const rapidjson::Value& resource) const;
  std::string LineTooLong() const {
    return "line longer than " + std::to_string(options_.max_line_bytes) +
           " bytes (--max-line-bytes)";
  }
  std::string DocumentTooLarge() const {
    return "document larger than " + std::to_string(options_.max_document_bytes) +
           " bytes (--max-document-bytes)";
  }

  LoadOptions options_;
  Progress progress_;
  uint64_t total_bytes_ = 0, done_bytes_ = 0;
  LoadReport report_;  // this thread's part: rejections, copies that changed nothing

  ParsedJson json_;
  std::string file_text_;  // the current whole-file document
  ResourceNormalizer normalizer_;
  BundleResolver resolver_;
  UuidDirectory uuids_;

  Batch batch_;
  std::unordered_map<std::string, size_t> batch_index_;  // Type/id -> index in batch_

  // Held-back Bundle entries (loader.h): key "" marks a copy superseded in place.
  std::vector<std::pair<std::string, PendingWrite>> held_;
  std::unordered_map<std::string, size_t> held_index_;
  size_t held_bytes_ = 0;

  struct WaitingBare {
    std::string text;
    std::string source;
    uint64_t line;
  };
  std::vector<WaitingBare> waiting_;
  size_t waiting_bytes_ = 0;

  bool finished_ = false;
  std::unique_ptr<BatchSink> sink_;
};

Status Loader::Impl::Reject(std::string_view type, const Where& where, std::string reason) {
  report_.by_type[type.empty() ? "?" : std::string(type)].rejected++;
  if (report_.rejections.size() < LoadReport::kMaxListed) {
    report_.rejections.push_back(
        LoadRejection{std::string(where.source), where.Location(), std::move(reason)});
  }
  return Status::OK();
}

std::string Loader::Impl::ReportType(const ParsedJson& json,
                                     const rapidjson::Value& resource) const {
  const rapidjson::Value* type = FindString(json, resource, "resourceType");
  if (type != nullptr && IsR4ResourceType(View(*type))) return std::string(View(*type));
  return "?";
}

// --- inputs -----------------------------------------------------------------------------

Status Loader::Impl::AddPaths(const std::vector<std::string>& paths) {
  namespace fs = std::filesystem;
  std::vector<std::pair<std::string, uint64_t>> files;
  for (const std::string& path : paths) {
    std::error_code ec;
    fs::file_status st = fs::status(path, ec);
    if (ec || !fs::exists(st)) return Status::IOError("cannot read " + path + ": no such file");
    if (fs::is_directory(st)) {
      std::vector<std::pair<std::string, uint64_t>> found;
      // Symbolic links to directories are not followed (no cycles); links to files are.
      for (auto it = fs::recursive_directory_iterator(path, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        std::error_code file_ec;  // a broken link is skipped, not the end of the walk
        if (!it->is_regular_file(file_ec) || !IsInputName(it->path().string())) continue;
        uintmax_t size = it->file_size(file_ec);
        found.emplace_back(it->path().string(), file_ec ? 0 : size);
      }
      if (ec) return Status::IOError("cannot list " + path + ": " + ec.message());
      std::sort(found.begin(), found.end());  // byte order: deterministic "last copy wins"
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.emplace_back(path, fs::file_size(path, ec));
    }
  }
  for (const auto& f : files) total_bytes_ += f.second;
  progress_.set_total(total_bytes_);
  for (const auto& f : files) {
    FHIRBULK_RETURN_IF_ERROR(ProcessFile(f.first, Mode::kResources));
    done_bytes_ += f.second;
    progress_.Update(done_bytes_);
  }
  return Status::OK();
}

Status Loader::Impl::AddDeletionsFile(const std::string& path) {
  std::error_code ec;
  uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return Status::IOError("cannot read " + path + ": " + ec.message());
  total_bytes_ += size;
  progress_.set_total(total_bytes_);
  FHIRBULK_RETURN_IF_ERROR(ProcessFile(path, Mode::kDeletions));
  done_bytes_ += size;
  progress_.Update(done_bytes_);
  return Status::OK();
}

// NDJSON streams line by line. Anything else is read whole, except that a file whose first
// line is a complete JSON object followed by more lines is NDJSON whatever its name.
Status Loader::Impl::ProcessFile(const std::string& path, Mode mode) {
  bool ndjson = mode == Mode::kDeletions || IsNdjsonName(path);
  // Until a file is known to be NDJSON its first line may be a whole document.
  auto file = InputFile::Open(
      path, ndjson ? options_.max_line_bytes
                   : std::max(options_.max_line_bytes, options_.max_document_bytes));
  if (!file.ok()) return file.status();
  InputFile& in = **file;
  std::string_view line;
  bool have = false;
  while ((have = in.NextLine(&line)) && !in.line_too_long() && IsBlank(line)) {
  }
  if (!have) return in.status();                                   // empty (or unreadable) file
  if (line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);  // a UTF-8 byte order mark

  if (!ndjson && in.line_too_long()) {
    return Reject("?", Where{path}, DocumentTooLarge());
  }
  if (!ndjson) {
    std::string_view t = Trim(line);
    if (t.size() >= 2 && t.front() == '{' && t.back() == '}') {
      // One complete line: NDJSON when more lines follow, else the whole document.
      std::string first(line);
      uint64_t first_no = in.line_number();
      in.set_max_line_bytes(options_.max_line_bytes);
      std::string_view next;
      bool more = false;
      while ((more = in.NextLine(&next)) && !in.line_too_long() && IsBlank(next)) {
      }
      FHIRBULK_RETURN_IF_ERROR(in.status());
      if (!more) {
        if (first.size() > options_.max_document_bytes) {
          return Reject("?", Where{path}, DocumentTooLarge());
        }
        return ProcessText(first, Where{path}, mode);
      }
      if (first.size() > options_.max_line_bytes) {
        FHIRBULK_RETURN_IF_ERROR(Reject("?", Where{path, first_no}, LineTooLong()));
      } else {
        FHIRBULK_RETURN_IF_ERROR(ProcessText(first, Where{path, first_no}, mode));
      }
      line = next;
      ndjson = true;
    } else {
      // Read into a buffer kept across files: no fresh pages for each Bundle.
      std::string& text = file_text_;
      text.clear();
      std::error_code ec;
      uintmax_t size = std::filesystem::file_size(path, ec);
      if (!ec && size > options_.max_document_bytes && !IsGzipName(path)) {
        return Reject("?", Where{path}, DocumentTooLarge());
      }
      if (!ec && !IsGzipName(path)) text.reserve(size + 1);  // one allocation, no regrowth
      text.append(line);
      text += '\n';
      Status read = in.ReadRest(&text, options_.max_document_bytes);
      if (read.code() == Status::Code::kResourceExhausted) {  // a .gz that inflates too far
        text.clear();
        text.shrink_to_fit();
        return Reject("?", Where{path}, DocumentTooLarge());
      }
      FHIRBULK_RETURN_IF_ERROR(read);
      return ProcessText(text, Where{path}, mode);
    }
  }
  in.set_max_line_bytes(options_.max_line_bytes);
  uint64_t count = 0;
  do {
    if (in.line_too_long()) {
      FHIRBULK_RETURN_IF_ERROR(Reject("?", Where{path, in.line_number()}, LineTooLong()));
      continue;
    }
    if (IsBlank(line)) continue;
    FHIRBULK_RETURN_IF_ERROR(ProcessText(line, Where{path, in.line_number()}, mode));
    if (++count % 256 == 0) progress_.Update(done_bytes_ + in.consumed_bytes());
  } while (in.NextLine(&line));
  return in.status();
}

Status Loader::Impl::AddResourceJson(std::string_view json, std::string_view source,
                                     uint64_t line) {
  if (json.size() > options_.max_line_bytes) return Reject("?", Where{source, line}, LineTooLong());
  return ProcessText(json, Where{source, line}, Mode::kResources);
}

Status Loader::Impl::ProcessText(std::string_view text, const Where& where, Mode mode) {
  // Only text that mentions urn:uuid can hold references to resolve (saves a walk of the rest).
  bool has_urn_uuid = mode == Mode::kResources && Contains(text, kUrnUuidPrefix);
  Status s = json_.Parse(text);
  if (!s.ok()) return Reject("?", where, s.message());
  return ProcessParsed(where, mode, has_urn_uuid);
}

Status Loader::Impl::ProcessParsed(const Where& where, Mode mode, bool has_urn_uuid) {
  rapidjson::Value& root = json_.doc();
  if (!root.IsObject()) return Reject("?", where, "not a JSON object");
  const rapidjson::Value* type = FindString(json_, root, "resourceType");
  if (type != nullptr && View(*type) == "Bundle") {
    const rapidjson::Value* bundle_type = FindString(json_, root, "type");
    if (bundle_type != nullptr && IsUnpackedBundleType(View(*bundle_type))) {
      return ProcessBundle(&root, where, mode);
    }
  }
  if (mode == Mode::kDeletions) return DeleteFromJson(root, where);
  return ProcessBare(&root, where, has_urn_uuid);
}

Status Loader::Impl::ProcessBundle(rapidjson::Value* bundle, const Where& where, Mode mode) {
  const rapidjson::Value* entries = FindMember(*bundle, "entry");
  if (entries != nullptr && entries->IsArray() && entries->Size() > options_.max_bundle_entries) {
    return Reject("Bundle", where,
                  "Bundle with " + std::to_string(entries->Size()) + " entries, more than " +
                      std::to_string(options_.max_bundle_entries) + " (--max-bundle-entries)");
  }
  resolver_.Index(&json_, bundle);
  if (entries == nullptr || !entries->IsArray()) return Status::OK();  // an empty Bundle
  rapidjson::Value& list = bundle->FindMember("entry")->value;
  for (rapidjson::SizeType i = 0; i < list.Size(); i++) {
    Where w = where;
    w.entry = i;
    rapidjson::Value& entry = list[i];
    if (!entry.IsObject()) {
      FHIRBULK_RETURN_IF_ERROR(Reject("?", w, "entry is not an object"));
      continue;
    }
    const rapidjson::Value* request = FindMember(entry, "request");
    const rapidjson::Value* method = request ? FindString(json_, *request, "method") : nullptr;
    auto res = entry.FindMember("resource");
    bool has_resource = res != entry.MemberEnd() && res->value.IsObject();
    if (mode == Mode::kDeletions || (method != nullptr && View(*method) == "DELETE")) {
      const rapidjson::Value* url = request ? FindString(json_, *request, "url") : nullptr;
      std::string_view type, id;
      if (url != nullptr && ParseTypeId(View(*url), &type, &id)) {
        FHIRBULK_RETURN_IF_ERROR(DoDelete(type, id, w));
      } else if (has_resource) {
        FHIRBULK_RETURN_IF_ERROR(DeleteFromJson(res->value, w));
      } else {
        FHIRBULK_RETURN_IF_ERROR(
            Reject("?", w, "DELETE entry without a request.url of the form Type/id"));
      }
      continue;
    }
    if (!has_resource) {
      FHIRBULK_RETURN_IF_ERROR(Reject("?", w, "entry has no resource"));
      continue;
    }
    rapidjson::Value& resource = res->value;
    Status s = resolver_.Resolve(json_, &resource);
    if (!s.ok()) {
      FHIRBULK_RETURN_IF_ERROR(Reject(ReportType(json_, resource), w, s.message()));
      continue;
    }
    bool accepted = false;
    FHIRBULK_RETURN_IF_ERROR(AddResource(&json_, &resource, w, true, &accepted));
    if (accepted) {
      const rapidjson::Value* full_url = FindString(json_, entry, "fullUrl");
      if (full_url != nullptr) {
        uuids_.Add(View(*full_url), View(resource["resourceType"]), View(resource["id"]));
      }
    }
  }
  return Status::OK();
}

Status Loader::Impl::ProcessBare(rapidjson::Value* resource, const Where& where,
                                 bool has_urn_uuid) {
  const rapidjson::Value* type = FindString(json_, *resource, "resourceType");
  // A stored Bundle (document, message...) keeps its internal urn:uuid references.
  bool is_bundle = type != nullptr && View(*type) == "Bundle";
  if (has_urn_uuid && !is_bundle) {
    std::vector<std::string> unresolved;
    Status s = ResolveBareResource(
        &json_, resource, [this](std::string_view ref) { return uuids_.Find(ref); }, &unresolved);
    if (!s.ok()) return Reject(ReportType(json_, *resource), where, s.message());
    if (!unresolved.empty()) {
      // Wait for the rest of the load, as text: the document is about to be replaced.
      rapidjson::StringBuffer text;
      JsonWriter writer(text);
      if (!WriteCompactJson(json_, *resource, &writer)) {
        return Reject(ReportType(json_, *resource), where, "nested too deep");
      }
      waiting_bytes_ += text.GetSize();
      waiting_.push_back(WaitingBare{std::string(text.GetString(), text.GetSize()),
                                     std::string(where.source), where.line});
      if (waiting_bytes_ > kBareBudget) return ResolveWaitingBare();
      return Status::OK();
    }
  }
  bool accepted = false;
  return AddResource(&json_, resource, where, false, &accepted);
}

Status Loader::Impl::DeleteFromJson(const rapidjson::Value& resource, const Where& where) {
  std::string_view type, id;
  Status s = CheckResourceIdentity(json_, resource, &type, &id);
  if (!s.ok()) return Reject(ReportType(json_, resource), where, "deletion: " + s.message());
  return DoDelete(type, id, where);
}

// --- one resource -----------------------------------------------------------------------

Status Loader::Impl::AddResource(ParsedJson* json, rapidjson::Value* resource, const Where& where,
                                 bool bundle_entry, bool* accepted) {
  *accepted = false;
  PendingWrite w;
  Status s = normalizer_.Normalize(*json, *resource, &w.resource);
  if (!s.ok()) return Reject(ReportType(*json, *resource), where, s.message());
  const std::string& type = w.resource.type;
  ResourceIndex index;
  s = IndexResource(*resource, &index);
  if (!s.ok()) return Reject(type, where, "cannot index: " + s.message());
  if (type == "Group") {
    w.is_group = true;
    s = ExtractGroupMembers(*resource, &w.members);
    if (!s.ok()) return Reject(type, where, "cannot read Group.member: " + s.message());
  }
  if (IndexHasNul(index, w.members)) {
    return Reject(type, where, "a searchable value contains U+0000");
  }
  EncodeIndex(index, &w.index_fields);
  *accepted = true;
  // Decided before the call: `type` refers into `w`, which the call's by-value parameter may
  // be moved from first (argument order is unspecified; clang goes left to right).
  const bool hold_back = bundle_entry && !IsPatientCompartmentType(type);
  return Enqueue(std::move(w), hold_back);
}

Status Loader::Impl::Delete(std::string_view type, std::string_view id) {
  return DoDelete(type, id, Where{"--delete"});
}

Status Loader::Impl::DoDelete(std::string_view type, std::string_view id, const Where& where) {
  if (!IsR4ResourceType(type)) {
    return Reject("?", where, "deletion: unknown resource type '" + std::string(type) + "'");
  }
  if (!IsValidFhirId(id)) {
    return Reject(type, where, "deletion: invalid id '" + std::string(id) + "'");
  }
  PendingWrite w;
  w.is_delete = true;
  w.resource.type.assign(type);
  w.resource.id.assign(id);
  return Enqueue(std::move(w), false);
}

// --- batching ---------------------------------------------------------------------------

Status Loader::Impl::Enqueue(PendingWrite write, bool hold_back) {
  std::string key = write.resource.type + "/" + write.resource.id;
  if (hold_back) {
    auto it = held_index_.find(key);
    if (it != held_index_.end()) {
      PendingWrite& prev = held_[it->second].second;
      CountUnchanged(prev.resource.type);  // the earlier copy is superseded
      held_bytes_ -= prev.bytes();
      held_bytes_ += write.bytes();
      prev = std::move(write);
    } else {
      held_index_.emplace(key, held_.size());
      held_bytes_ += write.bytes();
      held_.emplace_back(std::move(key), std::move(write));
    }
    return held_bytes_ > kSharedBudget ? FlushHeldBack() : Status::OK();
  }
  DropHeldBack(key);
  return AddToBatch(std::move(write), std::move(key));
}

void Loader::Impl::DropHeldBack(const std::string& key) {
  auto it = held_index_.find(key);
  if (it == held_index_.end()) return;
  auto& slot = held_[it->second];
  CountUnchanged(slot.second.resource.type);
  held_bytes_ -= slot.second.bytes();
  slot.first.clear();
  slot.second = PendingWrite();
  held_index_.erase(it);
}

Status Loader::Impl::FlushHeldBack() {
  auto held = std::move(held_);
  held_.clear();
  held_index_.clear();
  held_bytes_ = 0;
  for (auto& [key, write] : held) {
    if (key.empty()) continue;
    FHIRBULK_RETURN_IF_ERROR(AddToBatch(std::move(write), std::move(key)));
  }
  return Status::OK();
}

Status Loader::Impl::AddToBatch(PendingWrite write, std::string key) {
  auto it = batch_index_.find(key);
  if (it != batch_index_.end()) {
    const PendingWrite& prev = batch_.writes[it->second];
    if (!prev.is_delete && !write.is_delete && prev.resource.hash == write.resource.hash) {
      CountUnchanged(write.resource.type);  // an identical copy: nothing more to write
      return Status::OK();
    }
    // The batch writes each Type/id once; a second, different write goes to the next batch
    // so that both happen in order.
    FHIRBULK_RETURN_IF_ERROR(FlushBatch());
  }
  batch_.bytes += write.bytes();
  batch_index_.emplace(std::move(key), batch_.writes.size());
  batch_.writes.push_back(std::move(write));
  if (batch_.writes.size() >= options_.batch_resources || batch_.bytes >= options_.batch_bytes) {
    return FlushBatch();
  }
  return Status::OK();
}

Status Loader::Impl::FlushBatch() {
  if (batch_.writes.empty()) return Status::OK();
  batch_.keep_source_last_updated = options_.keep_source_last_updated;
  auto batch = std::make_shared<Batch>(std::move(batch_));
  batch_ = Batch();
  batch_index_.clear();
  return sink_->Write(std::move(batch));
}

// Bare resources whose urn:uuid references no Bundle had defined when they were read: by
// now every Bundle of the load has been read; what is still unknown is looked up among the
// stored ids (after writing what is pending, which may hold the targets).
Status Loader::Impl::ResolveWaitingBare() {
  if (waiting_.empty()) return Status::OK();
  auto waiting = std::move(waiting_);
  waiting_.clear();
  waiting_bytes_ = 0;

  auto parsed = std::make_unique<ParsedJson>();  // 64 KB: not on the stack
  ParsedJson& json = *parsed;
  std::unordered_set<std::string> unknown;
  for (const WaitingBare& b : waiting) {
    if (!json.Parse(b.text).ok()) continue;
    std::vector<std::string> refs;
    CollectUuidReferences(json, json.doc(), &refs);
    for (auto& r : refs) {
      if (uuids_.Find(r).empty()) unknown.insert(r.substr(kUrnUuidPrefix.size()));
    }
  }
  std::unordered_map<std::string, std::string> stored;  // id -> type
  if (!unknown.empty()) {
    FHIRBULK_RETURN_IF_ERROR(FlushBatch());
    FHIRBULK_RETURN_IF_ERROR(sink_->Drain());
    std::vector<std::string> ids;
    for (const auto& u : unknown) {
      if (IsValidFhirId(u)) ids.push_back(u);
    }
    std::sort(ids.begin(), ids.end());
    FHIRBULK_RETURN_IF_ERROR(sink_->FindStoredIds(ids, &stored));
  }
  auto lookup = [&](std::string_view ref) {
    std::string t = uuids_.Find(ref);
    if (!t.empty()) return t;
    auto it = stored.find(std::string(ref.substr(kUrnUuidPrefix.size())));
    return it == stored.end() ? std::string() : it->second + "/" + it->first;
  };
  for (WaitingBare& b : waiting) {
    Where where{b.source, b.line};
    Status s = json.Parse(b.text);
    if (!s.ok()) return Status::Internal("re-parsing a waiting resource: " + s.message());
    rapidjson::Value& resource = json.doc();
    std::vector<std::string> unresolved;
    s = ResolveBareResource(&json, &resource, lookup, &unresolved);
    if (!s.ok()) {
      FHIRBULK_RETURN_IF_ERROR(Reject(ReportType(json, resource), where, s.message()));
      continue;
    }
    if (!unresolved.empty()) {
      FHIRBULK_RETURN_IF_ERROR(Reject(
          ReportType(json, resource), where,
          "reference '" + unresolved.front().substr(0, 120) +
              "' is neither a fullUrl of a Bundle in this load nor the id of a stored resource"));
      continue;
    }
    bool accepted = false;
    FHIRBULK_RETURN_IF_ERROR(AddResource(&json, &resource, where, false, &accepted));
  }
  return Status::OK();
}

Status Loader::Impl::Finish(LoadReport* report) {
  if (finished_) return Status::Internal("Loader::Finish called twice");
  finished_ = true;
  Status s = ResolveWaitingBare();
  if (s.ok()) s = FlushHeldBack();
  if (s.ok()) s = FlushBatch();
  Status drained = sink_->Drain();
  if (s.ok()) s = drained;
  const BatchOutcome& db = sink_->outcome();
  for (const auto& [type, c] : db.by_type) {
    LoadTypeCounts& t = report_.by_type[type];
    t.loaded += c.loaded;
    t.unchanged += c.unchanged;
    t.deleted += c.deleted;
    t.absent += c.absent;
  }
  report_.absent_deletions = db.absent_deletions;
  progress_.Update(done_bytes_);
  progress_.Finish();
  *report = std::move(report_);
  return s;
}

// --- Loader -----------------------------------------------------------------------------

Result<std::unique_ptr<Loader>> Loader::Open(const LoadOptions& options) {
  if (options.writers < 1 || options.writers > 16) {
    return Status::InvalidArgument("writers must be 1..16");
  }
  std::vector<std::unique_ptr<PgConnection>> conns;
  for (int i = 0; i < options.writers; i++) {
    auto conn = PgConnection::Connect(options.conninfo);
    if (!conn.ok()) return conn.status();
    if (i == 0) {
      auto schema = (*conn)->Exec(
          "SELECT to_regclass('resource') IS NOT NULL AND to_regclass('group_member') IS NOT "
          "NULL");
      if (!schema.ok()) return schema.status();
      if (schema->get(0, 0) != "t") {
        return Status::NotFound(
            "the database has no FHIR resource schema: run 'fhir-bulk migrate'");
      }
    }
    // Values the schema gives no compression method of their own (the index arrays) would be
    // compressed with the server's default, pglz, several times slower than lz4.
    auto set = (*conn)->Exec("SET default_toast_compression = lz4");
    if (!set.ok()) return set.status();
    conns.push_back(std::move(conn).value());
  }
  return NewLoaderWithSink(options, NewDatabaseSink(std::move(conns), kQueuedBatches));
}

std::unique_ptr<Loader> NewLoaderWithSink(const LoadOptions& options,
                                          std::unique_ptr<BatchSink> sink) {
  return std::unique_ptr<Loader>(
      new Loader(std::make_unique<Loader::Impl>(options, std::move(sink))));
}

Loader::Loader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Loader::~Loader() = default;

Status Loader::AddPath(const std::string& path) { return impl_->AddPaths({path}); }
Status Loader::AddPaths(const std::vector<std::string>& paths) { return impl_->AddPaths(paths); }
Status Loader::AddDeletionsFile(const std::string& path) { return impl_->AddDeletionsFile(path); }
Status Loader::AddResourceJson(std::string_view json, std::string_view source, uint64_t line) {
  return impl_->AddResourceJson(json, source, line);
}
Status Loader::Delete(std::string_view type, std::string_view id) {
  return impl_->Delete(type, id);
}
Status Loader::Finish(LoadReport* report) { return impl_->Finish(report); }

}  // namespace fhirbulk
