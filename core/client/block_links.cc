#include "client/block_links.h"

#include <map>
#include <string_view>

namespace fhirbulk {
namespace client {

namespace {

std::string_view WithoutQuery(std::string_view url) {
  const size_t q = url.find_first_of("?#");
  return q == std::string_view::npos ? url : url.substr(0, q);
}

std::string Patient(const std::string& id) {
  return "Patient/" + (id.size() > 64 ? id.substr(0, 64) + "..." : id);
}

}  // namespace

std::vector<BlockLinkIssue> CheckBlockLinks(const std::vector<BlockFile>& files) {
  std::vector<BlockLinkIssue> issues;
  std::map<std::string_view, size_t> by_url;
  for (size_t i = 0; i < files.size(); ++i) by_url.emplace(WithoutQuery(files[i].url), i);
  std::map<size_t, size_t> continued_from;  // target -> source
  for (size_t i = 0; i < files.size(); ++i) {
    const BlockFile& f = files[i];
    if (f.continues_in_file.empty()) continue;
    auto it = by_url.find(WithoutQuery(f.continues_in_file));
    if (it == by_url.end()) {
      issues.push_back({i, "continuesInFile names no output file of the manifest"});
      continue;
    }
    const size_t t = it->second;
    if (t == i) {
      issues.push_back({i, "continuesInFile names the file itself"});
      continue;
    }
    if (!continued_from.emplace(t, i).second) {
      issues.push_back({i, "continuesInFile names a file another file continues in already"});
      continue;
    }
    if (!f.checked || !files[t].checked) continue;
    if (f.last_block.empty()) {
      issues.push_back({i, "continuesInFile on a file without patient blocks"});
    } else if (files[t].first_block != f.last_block) {
      issues.push_back(
          {i,
           "the block of " + Patient(f.last_block) + " goes on in a file that starts with " +
               (files[t].first_block.empty() ? std::string("no block header")
                                             : "the block of " + Patient(files[t].first_block))});
    }
  }
  // A block split across files without a link: a file's first block is another's last.
  std::map<std::string_view, size_t> last_of;
  for (size_t i = 0; i < files.size(); ++i) {
    if (files[i].checked && !files[i].last_block.empty()) last_of.emplace(files[i].last_block, i);
  }
  for (size_t t = 0; t < files.size(); ++t) {
    const BlockFile& g = files[t];
    if (!g.checked || g.first_block.empty() || continued_from.count(t) != 0) continue;
    auto it = last_of.find(g.first_block);
    if (it == last_of.end() || it->second == t) continue;
    issues.push_back({t, "the block of " + Patient(g.first_block) +
                             " is split across files without continuesInFile (it ends " +
                             "the file " + std::string(WithoutQuery(files[it->second].url)) + ")"});
  }
  return issues;
}

}  // namespace client
}  // namespace fhirbulk
