/*
 * fhirbulk.h: the C ABI between the nginx module (ngx_module/, C) and the C++ core.
 *
 * Conventions (after LevelDB's c.h):
 *  - Opaque handles; strings are pointer + length and need not be NUL-terminated.
 *  - No function throws; failures come back as a response (HTTP status + body) or as an
 *    error message written into a caller-provided buffer.
 *  - Memory allocated by the core (response bodies, header values) is released with
 *    fhirbulk_response_free(); the module copies what it needs into nginx pools first.
 *
 * Threads: a fhirbulk_server is created once at configuration time (nginx master) and is
 * read-only afterwards, so any thread may use it. Each request is handled once, in two
 * halves: fhirbulk_handle_fast() never blocks and is meant for the nginx event loop; it
 * routes, authenticates, parses and authorizes, and either answers or hands back a
 * fhirbulk_pending_t, the parsed request. fhirbulk_pending_run() does the database work of
 * that object and must run in a thread pool (each pool thread keeps its own database
 * connection); it never sees the raw request.
 *
 * Option defaults and bounds: fhirbulk/defaults.h.
 */

#ifndef FHIRBULK_FHIRBULK_H_
#define FHIRBULK_FHIRBULK_H_

#include <stddef.h>

#include "fhirbulk/defaults.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FHIRBULK_EXPORT __attribute__((visibility("default")))
#else
#define FHIRBULK_EXPORT
#endif

typedef struct fhirbulk_server_s fhirbulk_server_t;
typedef struct fhirbulk_pending_s fhirbulk_pending_t;

typedef struct {
  const char* data;
  size_t len;
} fhirbulk_str_t;

typedef struct {
  /* Absolute external base URL of the FHIR endpoint, e.g. https://h.example/fhir. */
  fhirbulk_str_t base_url;
  /* libpq connection string used by the module's thread-pool threads. */
  fhirbulk_str_t conninfo;
  /* Seconds a client is told to wait (Retry-After) when the database is unavailable;
   * 0 = FHIRBULK_DEFAULT_RETRY_AFTER. */
  int retry_after_unavailable;
  /* Directory of export files (<dir>/<job id>/...); empty: no export routes. */
  fhirbulk_str_t export_dir;
  /* Concurrent exports per client beyond which a kick-off gets 429 (0 = unlimited). */
  int max_active_exports;
  /* Per client, exports in progress or kept for download (not yet expired): at this count, or
   * when their files hold max_retained_bytes, a kick-off gets 429 + Retry-After (0 = unlimited). */
  int max_retained_exports;
  long long max_retained_bytes;
  /* Free space on the export volume below which kick-offs get 503 + Retry-After: bytes, and
   * percent of the volume (either one short refuses; 0 = no check). */
  long long min_free_bytes;
  int min_free_percent;
  /* Non-zero: a kick-off needs Accept: application/fhir+json and Prefer: respond-async. */
  int strict_kickoff_headers;
  /* A kick-off's _typeFilter queries may compile to at most this many search terms (a bare
   * reference id counts once per target type); beyond it 400, or the query is dropped with
   * Prefer: handling=lenient. 0 = FHIRBULK_DEFAULT_TYPEFILTER_MAX_TERMS. */
  int typefilter_max_terms;
  /* Retry-After (seconds) of 202 status answers; 0 = FHIRBULK_DEFAULT_POLL_RETRY_AFTER. */
  int poll_retry_after;
  /* Polls of a running job closer than this (ms) get 429; 0 = no limit. */
  int min_poll_interval_ms;
  /* Non-zero: SMART Backend Services authorization (token endpoint, bearer tokens). */
  int auth_enabled;
  /* Key file signing access tokens (core/auth/key_ring.h); required with auth_enabled. */
  fhirbulk_str_t token_key_file;
  /* Access token lifetime in seconds, 1..300; 0 = FHIRBULK_DEFAULT_TOKEN_LIFETIME. */
  int token_lifetime;
  /* Non-zero: clients' jwks_url may be http:// and resolve to private addresses (tests). */
  int jwks_allow_insecure;
  /* Non-empty: manifest URLs are signed with this key file (requiresAccessToken false). */
  fhirbulk_str_t signed_url_key_file;
  /* Lifetime of signed URLs in seconds, 1..3600; 0 = FHIRBULK_DEFAULT_SIGNED_URL_LIFETIME. */
  int signed_url_lifetime;
  /* Files per manifest page of allowPartialManifests exports (export/manifest_pages.h);
   * 0 = FHIRBULK_DEFAULT_MANIFEST_PAGE_SIZE. */
  int manifest_page_size;
  /* Non-zero: the operator API at <base>/_ops/api/ (server/ops_api.h); needs auth_enabled.
   * Zero: those paths are 404. */
  int operator_api;
} fhirbulk_server_options_t;

/* Returns NULL and writes a message into err on invalid options. */
FHIRBULK_EXPORT fhirbulk_server_t* fhirbulk_server_create(const fhirbulk_server_options_t* options,
                                                          char* err, size_t err_len);
FHIRBULK_EXPORT void fhirbulk_server_destroy(fhirbulk_server_t* server);

/* The path part of the base URL ("/fhir"; "" for a base at the root). The module routes a
 * request to the server only when its URI is below this path. Valid while server lives. */
FHIRBULK_EXPORT fhirbulk_str_t fhirbulk_server_base_path(const fhirbulk_server_t* server);

typedef enum {
  FHIRBULK_METHOD_OTHER = 0,
  FHIRBULK_METHOD_GET,
  FHIRBULK_METHOD_HEAD,
  FHIRBULK_METHOD_POST,
  FHIRBULK_METHOD_DELETE,
  FHIRBULK_METHOD_PUT /* the Group API's update; its body is read like a POST's */
} fhirbulk_method_e;

typedef struct {
  fhirbulk_method_e method;
  fhirbulk_str_t path;   /* path below the base, "" or starting with '/' */
  fhirbulk_str_t query;  /* raw query string, undecoded, without '?' */
  fhirbulk_str_t accept; /* header values; empty when absent */
  fhirbulk_str_t prefer;
  fhirbulk_str_t content_type;
  fhirbulk_str_t body;          /* request body (POST), may be empty */
  fhirbulk_str_t authorization; /* Authorization header; empty when absent */
  fhirbulk_str_t remote_addr;   /* peer address, for the audit trail */
} fhirbulk_request_t;

/*
 * Metrics (fhir_bulk_metrics). The module keeps per-node counters in a shared memory zone
 * (fhirbulk_counters_t, one for all its worker processes) and increments them with atomics;
 * what a response counts as is the core's decision, handed over in the response's metric tag.
 * fhirbulk_metrics_render() turns a snapshot of the counters, plus gauges it reads from the
 * database, into the Prometheus text format. Adding an enumerator changes the zone's size,
 * so a new module gets a fresh zone (nginx reuses a zone only at the same size).
 */

/* What a response answered. */
typedef enum {
  FHIRBULK_METRIC_OTHER = 0, /* metadata, discovery, unknown routes, errors before routing */
  FHIRBULK_METRIC_HEALTH,
  FHIRBULK_METRIC_KICKOFF_SYSTEM, /* $export at each level */
  FHIRBULK_METRIC_KICKOFF_PATIENT,
  FHIRBULK_METRIC_KICKOFF_GROUP,
  FHIRBULK_METRIC_POLL,     /* GET of a status URL */
  FHIRBULK_METRIC_CANCEL,   /* DELETE of a status URL */
  FHIRBULK_METRIC_TOKEN,    /* the token endpoint; outcome in fhirbulk_metric_tag_t.token */
  FHIRBULK_METRIC_DOWNLOAD, /* export files (the files module counts these itself) */
  FHIRBULK_METRIC_ROUTES
} fhirbulk_metric_route_e;

/* A token request's outcome: granted, or the OAuth error (RFC 6749 5.2) it was refused with. */
typedef enum {
  FHIRBULK_TOKEN_NONE = 0, /* not a token answer */
  FHIRBULK_TOKEN_GRANTED,
  FHIRBULK_TOKEN_INVALID_REQUEST,
  FHIRBULK_TOKEN_INVALID_CLIENT,
  FHIRBULK_TOKEN_INVALID_GRANT,
  FHIRBULK_TOKEN_INVALID_SCOPE,
  FHIRBULK_TOKEN_UNAUTHORIZED_CLIENT,
  FHIRBULK_TOKEN_UNSUPPORTED_GRANT_TYPE,
  FHIRBULK_TOKEN_UNAVAILABLE, /* temporarily_unavailable, database down */
  FHIRBULK_TOKEN_OUTCOMES
} fhirbulk_token_outcome_e;

/* Status codes are counted in these classes (fhirbulk_metric_code_index(); the label values
 * are "200" "202" "2xx" "304" "3xx" "400" "401" "403" "404" "429" "4xx" "503" "5xx"). */
#define FHIRBULK_METRIC_CODES 13

typedef struct {
  fhirbulk_metric_route_e route;
  fhirbulk_token_outcome_e token;
  int db_error; /* non-zero: the database failed while this request was answered */
} fhirbulk_metric_tag_t;

#define FHIRBULK_MAX_HEADERS 8

typedef struct {
  char* name;
  char* value;
} fhirbulk_header_t;

typedef struct {
  int status;         /* HTTP status */
  char* content_type; /* NULL for no body */
  char* body;
  size_t body_len;
  fhirbulk_header_t headers[FHIRBULK_MAX_HEADERS];
  int nheaders;
  char* log_message; /* for the error log, never the client; or NULL */
  int delay_ms;      /* send the response only after this long (without blocking a thread) */
  /* What the answer counts as (metrics). fhirbulk_handle_fast() sets it whichever way it
   * returns (on FHIRBULK_NEEDS_BLOCKING only this field: the route, should the module have
   * to answer itself, e.g. a full queue); fhirbulk_pending_run() sets it again. */
  fhirbulk_metric_tag_t metric;
} fhirbulk_response_t;

typedef enum {
  FHIRBULK_DONE = 0,      /* *response is filled in */
  FHIRBULK_NEEDS_BLOCKING /* *pending is set: run it with fhirbulk_pending_run() in a pool */
} fhirbulk_dispatch_e;

/* The event-loop half of request handling: routing, authentication, parsing, authorization,
 * and every answer that needs no database. Never fails: errors become OperationOutcome
 * responses (FHIRBULK_DONE, *pending NULL). FHIRBULK_NEEDS_BLOCKING: *pending is the parsed
 * request, owning copies of what it needs (the request's buffers may go once this returns);
 * the caller owns it and frees it with fhirbulk_pending_free(). */
FHIRBULK_EXPORT fhirbulk_dispatch_e fhirbulk_handle_fast(const fhirbulk_server_t* server,
                                                         const fhirbulk_request_t* request,
                                                         fhirbulk_response_t* response,
                                                         fhirbulk_pending_t** pending);

/* The blocking half: the database work of a pending request, on a thread-pool thread.
 * Never fails: a database that is down yields 503 with Retry-After and an OperationOutcome.
 * Runs once per pending object; the server that made it must still live. */
FHIRBULK_EXPORT void fhirbulk_pending_run(const fhirbulk_pending_t* pending,
                                          fhirbulk_response_t* response);

/* Releases a pending request, run or not (a client that went away); NULL is a no-op. */
FHIRBULK_EXPORT void fhirbulk_pending_free(fhirbulk_pending_t* pending);

/* A complete response for a condition the module detects itself (e.g. a full thread-pool
 * queue): status plus an OperationOutcome with the given issue code and diagnostics, and
 * Retry-After when retry_after > 0. */
FHIRBULK_EXPORT void fhirbulk_error_response(int status, const char* issue_code,
                                             const char* diagnostics, int retry_after,
                                             fhirbulk_response_t* response);

FHIRBULK_EXPORT void fhirbulk_response_free(fhirbulk_response_t* response);

/*
 * Export file downloads (the module serves the bytes; the core decides who may have them,
 * without the database: bearer token + the job's owner file, or a signed URL).
 */

typedef struct fhirbulk_files_s fhirbulk_files_t;

typedef struct {
  int auth_enabled;
  fhirbulk_str_t token_key_file;      /* required with auth_enabled */
  fhirbulk_str_t signed_url_key_file; /* empty: signed URLs are refused */
  fhirbulk_str_t export_dir;
  fhirbulk_str_t conninfo; /* empty: downloads are not written to the audit trail */
  /* fhir_bulk_token_lifetime in seconds (1..300; 0 = FHIRBULK_DEFAULT_TOKEN_LIFETIME): a
   * bearer token whose exp - iat is longer is refused, as on the API routes. */
  int token_lifetime;
} fhirbulk_files_options_t;

FHIRBULK_EXPORT fhirbulk_files_t* fhirbulk_files_create(const fhirbulk_files_options_t* options,
                                                        char* err, size_t err_len);
FHIRBULK_EXPORT void fhirbulk_files_destroy(fhirbulk_files_t* files);

/* Non-zero when rel, the path below a files location, is "<job id>/<file name>" naming an
 * export file the workers write (the core's grammar: export/job_dir.h); *job_id and
 * *file_name then point into rel. Zero: no such file can exist (404). */
FHIRBULK_EXPORT int fhirbulk_files_split_path(fhirbulk_str_t rel, fhirbulk_str_t* job_id,
                                              fhirbulk_str_t* file_name);

/* Non-zero when the download may proceed. Either way the identified client (or "") is
 * written NUL-terminated into client; on refusal *response is the answer (401/403/404). */
FHIRBULK_EXPORT int fhirbulk_files_authorize(const fhirbulk_files_t* files, fhirbulk_str_t job_id,
                                             fhirbulk_str_t file_name, fhirbulk_str_t authorization,
                                             fhirbulk_str_t query, char* client, size_t client_len,
                                             fhirbulk_response_t* response);

/* Records a download (any outcome) in the audit trail; never blocks. */
FHIRBULK_EXPORT void fhirbulk_files_audit(const fhirbulk_files_t* files, const char* client,
                                          fhirbulk_str_t target, int status,
                                          fhirbulk_str_t remote_addr);

/* For an nginx worker's exit_process hook (which nginx runs after the thread pools'): waits
 * until every thread that ran fhirbulk_pending_run() in this process has exited, at most
 * timeout_ms. nginx lets exit() begin while pool threads still run their thread-local
 * destructors (our database connections close there), and exit handlers racing them can abort
 * the process. Returns how many threads are still alive (0: all gone). */
FHIRBULK_EXPORT int fhirbulk_wait_for_request_threads(int timeout_ms);
/*
 * Metrics, continued: the counters of one nginx node, in the module's shared memory zone. The
 * module increments them with atomic adds (ngx_atomic_fetch_add: every field is an aligned
 * unsigned long, nginx's ngx_atomic_uint_t) and hands fhirbulk_metrics_render() a copy.
 */
typedef struct {
  /* responses by route and status class (fhirbulk_metric_code_index) */
  unsigned long responses[FHIRBULK_METRIC_ROUTES][FHIRBULK_METRIC_CODES];
  unsigned long tokens[FHIRBULK_TOKEN_OUTCOMES]; /* token answers by outcome */
  unsigned long download_bytes;                  /* body bytes of export files sent */
  unsigned long database_errors;                 /* requests the database failed */
  unsigned long pool_tasks;                      /* thread-pool tasks posted */
  unsigned long pool_rejected;                   /* refused: the pool's queue was full */
  unsigned long pool_queued;                     /* gauge: posted, not yet started */
  unsigned long pool_running;                    /* gauge: running on a pool thread */
} fhirbulk_counters_t;

/* The class index of an HTTP status (0 .. FHIRBULK_METRIC_CODES - 1). */
FHIRBULK_EXPORT int fhirbulk_metric_code_index(int status);

typedef struct fhirbulk_metrics_s fhirbulk_metrics_t;

/* The database side of a metrics location: conninfo as for the server. Returns NULL and
 * writes a message into err on invalid options. Read-only afterwards, like a server. */
FHIRBULK_EXPORT fhirbulk_metrics_t* fhirbulk_metrics_create(fhirbulk_str_t conninfo, char* err,
                                                            size_t err_len);
FHIRBULK_EXPORT void fhirbulk_metrics_destroy(fhirbulk_metrics_t* metrics);

/* Blocking (a thread-pool thread): the exposition (text/plain; version=0.0.4) of the node's
 * counters and of the database gauges (queried at most once a second per process; the cache
 * is shared by the process's threads). A database that is down yields the counters and
 * fhir_bulk_database_up 0, still 200. */
FHIRBULK_EXPORT void fhirbulk_metrics_render(const fhirbulk_metrics_t* metrics,
                                             const fhirbulk_counters_t* counters,
                                             fhirbulk_response_t* response);

/* Library version string, e.g. "0.1.0". */
FHIRBULK_EXPORT const char* fhirbulk_version(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FHIRBULK_FHIRBULK_H_ */
