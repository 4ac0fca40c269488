
/*
 * Copyright (C) ngx_fhir_bulk authors
 * Licensed under the Apache License, Version 2.0.
 *
 * What the two modules of ngx_http_fhir_bulk_module.so share: the API
 * module (ngx_http_fhir_bulk_module.c: the FHIR endpoint and its thread
 * pool) owns every directive but "fhir_bulk_files", including those the
 * files module (ngx_http_fhir_bulk_files_module.c: export downloads) reads
 * from it: authorization, the key files, the token lifetime and the
 * database connection of the audit trail.  The files module reads them from
 * the API module's merged location configuration, so the API module must
 * come first ("config" lists it first; its merge runs before the files
 * module's).
 */


#ifndef _NGX_HTTP_FHIR_BULK_H_INCLUDED_
#define _NGX_HTTP_FHIR_BULK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "fhirbulk/defaults.h"
#include "fhirbulk/fhirbulk.h"


/*
 * A cancelled job's marker: "<export dir>/.cancels/<job id>", written by the
 * node that acknowledges the DELETE (core/server/server.cc) before its 202;
 * every node refuses the job's files while it exists.  The directory's name
 * is the core's (fhirbulk/defaults.h, export/job_dir.h).
 */
#define NGX_HTTP_FHIR_BULK_CANCELS  "/" FHIRBULK_CANCEL_MARKER_DIR "/"


typedef struct {
    ngx_flag_t            api;
    ngx_str_t             base_url;
    ngx_str_t             conninfo;
    ngx_str_t             conninfo_file;
    ngx_str_t             thread_pool_name;
    ngx_int_t             retry_after;
    ngx_str_t             export_dir;
    ngx_int_t             max_active_exports;
    ngx_int_t             max_retained_exports;
    off_t                 max_retained_size;
    off_t                 min_free_space;
    ngx_int_t             min_free_percent;
    ngx_flag_t            strict_headers;
    ngx_int_t             typefilter_max_terms;
    ngx_msec_t            min_poll_interval;
    ngx_int_t             manifest_page_size;
    ngx_flag_t            operator_api;
    ngx_flag_t            auth;
    ngx_str_t             token_key_file;
    ngx_int_t             token_lifetime;
    ngx_flag_t            jwks_allow_insecure;
    ngx_str_t             signed_url_key_file;
    ngx_int_t             signed_url_lifetime;

    ngx_flag_t            metrics;         /* fhir_bulk_metrics */

    ngx_thread_pool_t    *thread_pool;
    fhirbulk_server_t    *server;
    fhirbulk_metrics_t   *metrics_source;
} ngx_http_fhir_bulk_loc_conf_t;


extern ngx_module_t  ngx_http_fhir_bulk_module;
extern ngx_module_t  ngx_http_fhir_bulk_files_module;


/* writes a core response (status, headers, body) as the request's answer */
ngx_int_t ngx_http_fhir_bulk_send(ngx_http_request_t *r,
    fhirbulk_response_t *resp);

/* an OperationOutcome answer for a condition the module detects itself */
ngx_int_t ngx_http_fhir_bulk_send_error(ngx_http_request_t *r,
    ngx_int_t status, const char *issue_code, const char *diagnostics,
    ngx_int_t retry_after);

/* exactly one of conninfo and conninfo_file; reads the file; else logs why */
char *ngx_http_fhir_bulk_require_conninfo(ngx_conf_t *cf,
    ngx_http_fhir_bulk_loc_conf_t *conf, const char *directive);

/* sets conf->conninfo from conf->conninfo_file */
char *ngx_http_fhir_bulk_read_conninfo_file(ngx_conf_t *cf,
    ngx_http_fhir_bulk_loc_conf_t *conf);

/* an absolute path, NUL-terminated; empty stays empty */
ngx_int_t ngx_http_fhir_bulk_full_name(ngx_conf_t *cf, ngx_str_t *name);


/*
 * Metrics (ngx_http_fhir_bulk_metrics.c): the node's counters in the shared
 * zone "fhir_bulk_metrics" (NULL before it exists), counted with atomics.
 */
extern fhirbulk_counters_t  *ngx_http_fhir_bulk_counters;

/* adds n to one counter (or gauge) of ngx_http_fhir_bulk_counters */
void ngx_http_fhir_bulk_metric_add(unsigned long *counter, ngx_int_t n);

/* counts one response: the core's tag plus the status sent */
void ngx_http_fhir_bulk_count(fhirbulk_metric_tag_t *tag, ngx_uint_t status);

/* counts one export file request and its body bytes (log phase) */
void ngx_http_fhir_bulk_count_download(ngx_http_request_t *r);

ngx_int_t ngx_http_fhir_bulk_metrics_add_zone(ngx_conf_t *cf);
char *ngx_http_fhir_bulk_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_fhir_bulk_metrics_merge(ngx_conf_t *cf,
    ngx_http_fhir_bulk_loc_conf_t *conf);


#endif /* _NGX_HTTP_FHIR_BULK_H_INCLUDED_ */
