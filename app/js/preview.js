// Columns of the preview table per resource type: what a person looks at first.

const text = (cc) => {
  if (!cc) return '';
  if (cc.text) return cc.text;
  const c = (cc.coding || [])[0];
  return c ? (c.display || c.code || '') : '';
};
const period = (p) => (p ? [p.start, p.end].filter(Boolean).join(' → ') : '');
const ref = (r) => (r ? r.display || r.reference || '' : '');
const quantity = (q) => (q ? [q.value, q.unit || q.code].filter((x) => x !== undefined && x !== '').join(' ') : '');

function humanName(p) {
  const n = (p.name || []).find((x) => x.use === 'official') || (p.name || [])[0];
  if (!n) return '';
  if (n.text) return n.text;
  return [...(n.given || []), n.family].filter(Boolean).join(' ');
}

function obsValue(o) {
  if (o.valueQuantity) return quantity(o.valueQuantity);
  if (o.valueCodeableConcept) return text(o.valueCodeableConcept);
  for (const k of ['valueString', 'valueBoolean', 'valueInteger', 'valueDateTime']) {
    if (o[k] !== undefined) return String(o[k]);
  }
  if (o.component) {
    return o.component.map((c) => `${text(c.code)}: ${c.valueQuantity ? quantity(c.valueQuantity) : text(c.valueCodeableConcept)}`).join('; ');
  }
  return '';
}

const COLUMNS = {
  Patient: [['Name', humanName], ['Gender', (r) => r.gender], ['Birth date', (r) => r.birthDate]],
  Observation: [['Code', (r) => text(r.code)], ['Value', obsValue],
                ['Date', (r) => r.effectiveDateTime || period(r.effectivePeriod) || r.issued]],
  Condition: [['Code', (r) => text(r.code)], ['Onset', (r) => r.onsetDateTime || period(r.onsetPeriod)],
              ['Clinical status', (r) => text(r.clinicalStatus)]],
  Encounter: [['Class', (r) => r.class?.display || r.class?.code], ['Type', (r) => text((r.type || [])[0])],
              ['Period', (r) => period(r.period)]],
  Procedure: [['Code', (r) => text(r.code)], ['Performed', (r) => r.performedDateTime || period(r.performedPeriod)]],
  MedicationRequest: [['Medication', (r) => text(r.medicationCodeableConcept) || ref(r.medicationReference)],
                      ['Status', (r) => r.status], ['Authored', (r) => r.authoredOn]],
  Immunization: [['Vaccine', (r) => text(r.vaccineCode)], ['Date', (r) => r.occurrenceDateTime]],
  DiagnosticReport: [['Code', (r) => text(r.code)], ['Date', (r) => r.effectiveDateTime || r.issued]],
  AllergyIntolerance: [['Code', (r) => text(r.code)], ['Recorded', (r) => r.recordedDate]],
  Practitioner: [['Name', humanName]],
  Organization: [['Name', (r) => r.name]],
  Location: [['Name', (r) => r.name]],
  Group: [['Name', (r) => r.name], ['Members', (r) => r.quantity ?? (r.member || []).length]],
  Provenance: [['Recorded', (r) => r.recorded], ['Targets', (r) => (r.target || []).length]],
};

// Subject column for types in a patient's compartment.
const subject = (r) => ref(r.subject || r.patient);

// [{ header, cell(resource) }] for a type: id first, its own columns, then the subject or,
// for types without a list here, resourceType and meta.lastUpdated.
export function columnsFor(type, sample) {
  const cols = [{ header: 'id', cell: (r) => r.id }];
  const own = COLUMNS[type];
  if (own) {
    for (const [header, cell] of own) cols.push({ header, cell });
    if (sample.some((r) => r.subject || r.patient)) cols.push({ header: 'Subject', cell: subject });
  } else {
    cols.push({ header: 'resourceType', cell: (r) => r.resourceType });
  }
  cols.push({ header: 'Last updated', cell: (r) => r.meta?.lastUpdated });
  return cols;
}

// Lines (NDJSON) -> { headers, rows } of strings; unparsable lines become a row saying so.
// organizeOutputBy=Patient files begin blocks with a Parameters header line: shown as such.
export function previewTable(type, lines) {
  const resources = [];
  for (const l of lines) {
    try { resources.push(JSON.parse(l)); } catch { resources.push({ id: '(not JSON)' }); }
  }
  const mainType = type || (resources.find((r) => r.resourceType && r.resourceType !== 'Parameters') || {}).resourceType;
  const cols = columnsFor(mainType, resources);
  const mixed = resources.some((r) => r.resourceType && r.resourceType !== mainType);
  if (mixed && !cols.some((c) => c.header === 'resourceType')) {
    cols.splice(1, 0, { header: 'resourceType', cell: (r) => r.resourceType });
  }
  const rows = resources.map((r) => cols.map((c) => {
    try {
      const v = r.resourceType && r.resourceType !== mainType && !['id', 'resourceType', 'Last updated'].includes(c.header) ? '' : c.cell(r);
      return v === undefined || v === null ? '' : String(v);
    } catch { return ''; }
  }));
  return { headers: cols.map((c) => c.header), rows };
}
