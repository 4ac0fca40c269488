// IG 3.0.0 (STU3) planning and reading for organizeOutputBy=Patient and includeAssociatedData
// (sql/0011_stu3_blocks_provenance.sql). The files are written by PatientBlockWriter
// (patient_block_writer.h); planner.cc and unit_runner.cc call in here.
//
// organizeOutputBy=Patient:
//  - A resource's block is its block key: the first patient of its compartments
//    (patients[1]; the loader sorts `patients`); with a patient list (Group, `patient`) the
//    least of its patients in the list. So every resource is in exactly one block, also one
//    in several compartments.
//  - Units: "patients" units over ranges of block keys [block_lo, block_hi) (NULL = open),
//    cut at every target_patients-th patient (of the Patient table, or of the job's
//    patient_scope), so several workers share one export and each unit reads its range in
//    block order: patient, the Patient first, then by type. Without a patient list the
//    index resource_block serves that order (no sort); with one, PostgreSQL sorts the
//    unit's rows (Group exports are bounded by their members). Memory of the worker stays
//    that of one row and one write buffer.
//  - Resources that belong to no patient: at system level, the rows in no compartment
//    (every type outside the compartment, and compartment rows without a patient) are read
//    by one "unattached" unit; at Patient and Group level the supporting resources
//    (Practitioner, Organization, Location, Medication referenced by the blocks) keep their
//    own units. Both write files without header lines, never mixed with blocks; the IG says
//    nothing of resources that reference no patient, so they are listed in `output` as
//    block files are (without `type`).
//  - _since/_until, _typeFilter and _elements apply to every row as in a type-organized
//    export; a block whose Patient did not change since _since still gets its header.
//  - deleted and error units are unchanged.
//
// includeAssociatedData (Latest/RelevantProvenanceResources; Relevant wins when both are
// given): the default Provenance rule (system level: every Provenance; Patient/Group level:
// the Provenance of the compartment) no longer applies, unless _type names Provenance; one
// "assoc" unit writes the Provenance whose `target` references an exported resource (of the
// job's compartment or system types; supporting resources are not looked at): all of them
// (relevant), or per target the most recent one by `recorded` (else meta.lastUpdated; ties by
// id), each Provenance once. With _type naming Provenance the assoc unit is not added: the
// requested Provenance are exported as they are (the code system: "does not exclude
// Provenance that would otherwise be returned").
//
// Thread-safety: functions over a caller-owned connection.

#ifndef FHIRBULK_WORKER_PATIENT_BLOCKS_H_
#define FHIRBULK_WORKER_PATIENT_BLOCKS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "db/pg.h"
#include "export/export_request.h"
#include "util/status.h"
#include "worker/planner.h"

namespace fhirbulk {

constexpr int64_t kDefaultBlockUnitPatients = 250;

bool OrganizedByPatient(const ExportRequest& request);

// "latest", "relevant" or "" (no includeAssociatedData code).
std::string AssociatedProvenanceMode(const ExportRequest& request);

// The units of an organizeOutputBy=Patient job (see above), numbered from 1. Needs the
// job's patient_scope fixed first (planner.cc does it in the same transaction).
Result<std::vector<UnitPlan>> PlanPatientBlockUnits(
    PgConnection* conn, const ExportRequest& request, const std::vector<std::string>& types,
    const std::string& job_id, int64_t transaction_time_us, int64_t target_patients);

// A type-organized job's units, adjusted for includeAssociatedData: the Provenance output
// units go (unless _type named Provenance) and the assoc unit comes after the output units;
// renumbered from 1. No change without the parameter.
void ApplyAssociatedData(const ExportRequest& request, const std::vector<std::string>& types,
                         std::vector<UnitPlan>* units);

// Stores the units' blocks, block_lo, block_hi, block_types and assoc (after their INSERT).
Status RecordBlockColumns(PgConnection* conn, const std::string& job_id,
                          const std::vector<UnitPlan>& units);

// Whether any version of the unit's types (an assoc unit's: its block_types and Provenance)
// that was current at transactionTime has been replaced since (resource_history). Asked in the
// unit's REPEATABLE READ transaction, before its COPY, so both see one snapshot.
Result<bool> BlockUnitNeedsHistory(PgConnection* conn, int64_t transaction_time_us,
                                   const UnitPlan& unit);

// The COPY of a blocks unit: rows (block key or NULL, res_type, body) as of transactionTime, in
// block order. with_history: the kept versions are read too (BlockUnitNeedsHistory said so;
// false only in the same snapshot as that answer). Sets *index_order when the index
// resource_block delivers that order (a "patients" unit without a patient list or kept
// versions): the caller then keeps the planner on it (SetBlockIndexOrder).
Result<std::string> BuildBlockUnitCopySql(PgConnection* conn, const ExportRequest& request,
                                          const std::string& job_id, int64_t transaction_time_us,
                                          const UnitPlan& unit, bool with_history,
                                          bool* index_order = nullptr);

// For the rest of the caller's transaction (SET LOCAL): read the index in order instead of a
// bitmap scan sorted afterwards, which PostgreSQL prefers by its costs but which spills ~80 MB
// per 100,000-row unit to disk and takes twice as long (benchmarks/RESULTS.md); no parallel
// workers (the export's own threads are the parallelism).
Status SetBlockIndexOrder(PgConnection* conn);

// The COPY of an assoc unit: rows (body) of the Provenance to add, Provenance and targets as
// of transactionTime. with_history as for BuildBlockUnitCopySql: BlockUnitNeedsHistory asked
// over the unit's block_types and Provenance, in the same snapshot.
Result<std::string> BuildAssociatedProvenanceCopySql(PgConnection* conn,
                                                     const ExportRequest& request,
                                                     const std::string& job_id,
                                                     int64_t transaction_time_us,
                                                     const UnitPlan& unit, bool with_history);

}  // namespace fhirbulk

#endif  // FHIRBULK_WORKER_PATIENT_BLOCKS_H_
