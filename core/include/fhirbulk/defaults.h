/*
 * defaults.h: the one definition of the server's option defaults and bounds, and of the
 * names the C module shares with the core.
 *
 * The nginx module's merge_conf fills unset directives from these, ServerOptions and
 * FileAccessOptions (core/server/) start from them, the lower layers' constants
 * (auth/access_token.h, auth/signed_url.h, export/export_request.h, export/job_dir.h) are
 * defined by them, and README's directive table states them. A C header (macros only) so the
 * C module and the C++ core read the same text; every core folder may include it (the build
 * links it into each folder's include tree), none may include the C ABI beside it.
 */

#ifndef FHIRBULK_DEFAULTS_H_
#define FHIRBULK_DEFAULTS_H_

/* The directory of cancel markers in an export directory: "<export dir>/.cancels/<job id>"
 * (export/job_dir.h; written by the API module, read by the files module and the workers). */
#define FHIRBULK_CANCEL_MARKER_DIR ".cancels"

/* fhir_bulk_thread_pool */
#define FHIRBULK_DEFAULT_THREAD_POOL "default"
/* fhir_bulk_retry_after: seconds, 1..3600 */
#define FHIRBULK_DEFAULT_RETRY_AFTER 5
#define FHIRBULK_MAX_RETRY_AFTER 3600
/* Retry-After (seconds) of 202 status answers (no directive) */
#define FHIRBULK_DEFAULT_POLL_RETRY_AFTER 2
/* fhir_bulk_max_active_exports, fhir_bulk_max_retained_exports: 0 = unlimited */
#define FHIRBULK_DEFAULT_MAX_ACTIVE_EXPORTS 4
#define FHIRBULK_DEFAULT_MAX_RETAINED_EXPORTS 20
#define FHIRBULK_MAX_EXPORTS_LIMIT 1000000
/* fhir_bulk_max_retained_size: bytes, 0 = unlimited (10 GiB) */
#define FHIRBULK_DEFAULT_MAX_RETAINED_BYTES (10LL * 1024 * 1024 * 1024)
/* fhir_bulk_min_free_space (1 GiB), fhir_bulk_min_free_percent (0..99): 0 = no check */
#define FHIRBULK_DEFAULT_MIN_FREE_BYTES (1LL * 1024 * 1024 * 1024)
#define FHIRBULK_DEFAULT_MIN_FREE_PERCENT 5
#define FHIRBULK_MAX_MIN_FREE_PERCENT 99
/* fhir_bulk_strict_headers: on */
#define FHIRBULK_DEFAULT_STRICT_HEADERS 1
/* fhir_bulk_typefilter_max_terms: 1..1000000 */
#define FHIRBULK_DEFAULT_TYPEFILTER_MAX_TERMS 5000
#define FHIRBULK_MAX_TYPEFILTER_MAX_TERMS 1000000
/* fhir_bulk_min_poll_interval: milliseconds, 0 = no limit, at most 1 h */
#define FHIRBULK_DEFAULT_MIN_POLL_INTERVAL_MS 1000
#define FHIRBULK_MAX_MIN_POLL_INTERVAL_MS 3600000
/* fhir_bulk_auth: secure by default, on */
#define FHIRBULK_DEFAULT_AUTH 1
/* fhir_bulk_token_lifetime: seconds, 1..300 (SMART access tokens are short-lived) */
#define FHIRBULK_DEFAULT_TOKEN_LIFETIME 300
#define FHIRBULK_MAX_TOKEN_LIFETIME 300
/* fhir_bulk_jwks_allow_insecure: off */
#define FHIRBULK_DEFAULT_JWKS_ALLOW_INSECURE 0
/* fhir_bulk_signed_url_lifetime: seconds, 1..3600 (IG 3.0.0: bearer-token timescales) */
#define FHIRBULK_DEFAULT_SIGNED_URL_LIFETIME 300
#define FHIRBULK_MAX_SIGNED_URL_LIFETIME 3600
/* fhir_bulk_manifest_page_size: files per manifest page of allowPartialManifests exports,
 * 1..100000 (export/manifest_pages.h) */
#define FHIRBULK_DEFAULT_MANIFEST_PAGE_SIZE 1000
#define FHIRBULK_MAX_MANIFEST_PAGE_SIZE 100000

/* The Group API (core/server/group_api.h; no directives): members of one Group (POST/PUT
 * bodies and evaluated cohorts alike), member-filter extensions of one cohort, the body of a
 * Group write (beyond it 413; nginx's client_max_body_size must allow it too), and the
 * statement timeout of one cohort evaluation (it runs on a thread-pool thread). */
#define FHIRBULK_DEFAULT_GROUP_MAX_MEMBERS 100000
#define FHIRBULK_DEFAULT_GROUP_MAX_FILTERS 8
#define FHIRBULK_DEFAULT_GROUP_MAX_BODY (16 * 1024 * 1024)
#define FHIRBULK_DEFAULT_COHORT_TIMEOUT_MS 20000
/* Worker heartbeats (sql/0006_worker_heartbeat.sql): a worker writes its row this often
 * (seconds); readers (/_health, /metrics) count it live while its last_seen is younger than
 * FHIRBULK_WORKER_LIVE_SECONDS (three missed beats); rows older than
 * FHIRBULK_WORKER_FORGET_SECONDS are deleted by the next worker that beats. */
#define FHIRBULK_WORKER_HEARTBEAT_SECONDS 5
#define FHIRBULK_WORKER_LIVE_SECONDS 15
#define FHIRBULK_WORKER_FORGET_SECONDS 3600
/* /_health fails (503) when no worker is live and a job has waited (accepted or running)
 * longer than this many seconds (core/server/health.h). */
#define FHIRBULK_HEALTH_QUEUE_FAIL_SECONDS 30

#endif /* FHIRBULK_DEFAULTS_H_ */
