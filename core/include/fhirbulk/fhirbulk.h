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
  FHIRBULK_METHOD_DELETE
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

/* Library version string, e.g. "0.1.0". */
FHIRBULK_EXPORT const char* fhirbulk_version(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FHIRBULK_FHIRBULK_H_ */
