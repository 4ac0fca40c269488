// export/job_dir.h: the export directory's layout, written by the worker and read by the
// HTTP side, so each name is built and parsed by the same code.

#include "export/job_dir.h"

#include <gtest/gtest.h>

namespace fhirbulk {
namespace {

TEST(JobDirTest, Paths) {
  EXPECT_EQ(JobDirectory("/x/exports", "0b6e"), "/x/exports/0b6e");
  EXPECT_EQ(CancelMarkerDirectory("/x/exports"), "/x/exports/.cancels");
  EXPECT_EQ(CancelledJobDirectory("/x/exports", "0b6e"), "/x/exports/.cancelled-0b6e");
  EXPECT_EQ(kJobOwnerFile, ".owner");
  EXPECT_EQ(kJobOwnerTempFile, std::string(kJobOwnerFile) + ".tmp");
}

// The C module spells the marker path itself (NGX_HTTP_FHIR_BULK_CANCELS "/.cancels/").
TEST(JobDirTest, CancelMarkerDirectory) {
  EXPECT_EQ(CancelMarkerDirectory("/srv/exports"), "/srv/exports/.cancels");
}

TEST(JobDirTest, CancelledDirJobId) {
  EXPECT_EQ(CancelledDirJobId(".cancelled-abc"), std::optional<std::string_view>("abc"));
  EXPECT_EQ(CancelledDirJobId(".cancelled-"), std::optional<std::string_view>(""));
  EXPECT_FALSE(CancelledDirJobId("abc"));
  EXPECT_FALSE(CancelledDirJobId(".cancels"));
  EXPECT_FALSE(CancelledDirJobId(".cancelle"));
}

// Every name the writer makes parses back to its parts, temp and gzip forms included.
TEST(JobDirTest, FileNamesRoundTrip) {
  const std::string name = ExportFileNameOf("Observation", 12, 3);
  EXPECT_EQ(name, "Observation.12.3.ndjson");
  const std::string suffix = TempFileSuffix("host-1-ab12-t0");
  EXPECT_EQ(suffix, ".tmp.host-1-ab12-t0");
  for (const std::string& n : {name, name + std::string(kGzipTwinSuffix), name + suffix,
                               name + std::string(kGzipTwinSuffix) + suffix}) {
    auto f = ParseExportFileName(n);
    ASSERT_TRUE(f.has_value()) << n;
    EXPECT_EQ(f->type, "Observation");
    EXPECT_EQ(f->unit_no, 12);
    EXPECT_EQ(f->seq, 3);
    EXPECT_EQ(f->gzip, n.find(".gz") != std::string::npos) << n;
    EXPECT_EQ(f->temp, n.find(".tmp.") != std::string::npos) << n;
  }
  EXPECT_FALSE(ParseExportFileName(name + TempFileSuffix("")));  // a temp name needs its id
  EXPECT_FALSE(ParseExportFileName(std::string(kJobOwnerFile)));
  EXPECT_FALSE(ParseExportFileName(std::string(kJobOwnerTempFile)));
}

}  // namespace
}  // namespace fhirbulk
