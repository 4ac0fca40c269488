// Block links across the files of an organizeOutputBy=Patient export (IG 3.0.0): a patient's
// block is split across files only when it alone exceeds the server's file size; then the
// file it starts in names, in the manifest's `continuesInFile`, the file it goes on in, and
// that file starts with the block's header again.
//
// NdjsonValidator checks each file on its own (headers, the Patient first, no block split
// inside a file); CheckBlockLinks checks what only the set of files shows, from each file's
// first and last block (NdjsonValidator::first_block / last_block):
//  - continuesInFile names another output file of the manifest (URLs compared without their
//    query string: signed links of two manifest pages differ in their signature);
//  - no file is continued from two files;
//  - the continued file's first block is the continuing file's last block;
//  - conversely, a file whose first block is another file's last block is that file's
//    continuesInFile (else the block was split without a link).
// Only adjacent blocks are compared: a patient's header in the middle of two files is not
// seen (that would need every header of the export in memory).
//
// Thread-safety: a pure function.

#ifndef FHIRBULK_CLIENT_BLOCK_LINKS_H_
#define FHIRBULK_CLIENT_BLOCK_LINKS_H_

#include <cstddef>
#include <string>
#include <vector>

namespace fhirbulk {
namespace client {

struct BlockFile {
  std::string url;                // the manifest's url
  std::string continues_in_file;  // the manifest's continuesInFile, or ""
  std::string first_block;        // patient id of the first header, "" without headers
  std::string last_block;         // patient id of the last header
  bool checked = true;            // false: not downloaded, its blocks are unknown
};

struct BlockLinkIssue {
  size_t file;  // index into the files given
  std::string message;
};

std::vector<BlockLinkIssue> CheckBlockLinks(const std::vector<BlockFile>& files);

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_BLOCK_LINKS_H_
