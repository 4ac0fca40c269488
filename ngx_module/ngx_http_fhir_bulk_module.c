
/*
 * Copyright (C) ngx_fhir_bulk authors
 * Licensed under the Apache License, Version 2.0.
 *
 * ngx_http_fhir_bulk_module: the FHIR endpoint of the FHIR Bulk Data server
 * (the API module; export downloads are ngx_http_fhir_bulk_files_module, in
 * the same shared object, see ngx_http_fhir_bulk.h).
 *
 * The module owns no FHIR logic: it turns an nginx request into a
 * fhirbulk_request_t, asks the core (core/include/fhirbulk/fhirbulk.h) for the
 * answer and writes it out.  Each request is handled once, in two halves, so
 * that the event loop never waits on PostgreSQL: fhirbulk_handle_fast() runs
 * here, in the event loop, and either answers or hands back the parsed
 * request as a fhirbulk_pending_t; the module then posts
 * fhirbulk_pending_run() to an nginx thread pool and finishes the request in
 * the task's completion event.  A full queue answers 503 + Retry-After.  The
 * pending object lives in the request's module context and is freed by a
 * cleanup of the request pool, however the request ends.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_fhir_bulk.h"


#if !(NGX_THREADS)
#error ngx_http_fhir_bulk_module needs nginx built --with-threads
#endif


/* how often a request waiting for the thread pool re-arms its timer (ms) */
#define NGX_HTTP_FHIR_BULK_IN_FLIGHT_TICK  60000

/* how long an exiting worker waits for its pool threads to be gone */
#define NGX_HTTP_FHIR_BULK_EXIT_WAIT       2000

/* the export directories of this configuration, for their ".cancels" */
typedef struct {
    ngx_array_t           export_dirs;     /* of ngx_str_t */
} ngx_http_fhir_bulk_main_conf_t;


/*
 * Per request that needs the thread pool (ngx_http_set_ctx): the pending
 * request the fast half handed over, the answer the thread fills in, and a
 * timer.  Released by ngx_http_fhir_bulk_cleanup_request() with the request
 * pool, also when the client goes away mid-request.
 */
typedef struct {
    fhirbulk_pending_t   *pending;
    fhirbulk_response_t   response;
    /*
     * Armed while the task is queued or running.  A worker shutting down
     * gracefully (reload, QUIT) exits once no uncancelable timer is left,
     * and nothing else marks a request waiting for the thread pool as alive.
     * Then, for an answer the core holds back (delay_ms), the delay.
     */
    ngx_event_t           in_flight;
} ngx_http_fhir_bulk_ctx_t;


static ngx_int_t ngx_http_fhir_bulk_handler(ngx_http_request_t *r);
static void ngx_http_fhir_bulk_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_fhir_bulk_process(ngx_http_request_t *r);
static ngx_int_t ngx_http_fhir_bulk_init_request(ngx_http_request_t *r,
    ngx_http_fhir_bulk_loc_conf_t *flcf, fhirbulk_request_t *req);
static ngx_int_t ngx_http_fhir_bulk_header_value(ngx_http_request_t *r,
    const char *name, size_t name_len, fhirbulk_str_t *out);
static ngx_int_t ngx_http_fhir_bulk_read_body(ngx_http_request_t *r,
    fhirbulk_str_t *out);
static void ngx_http_fhir_bulk_thread_handler(void *data, ngx_log_t *log);
static void ngx_http_fhir_bulk_thread_done(ngx_event_t *ev);
static void ngx_http_fhir_bulk_in_flight_handler(ngx_event_t *ev);
static void ngx_http_fhir_bulk_delayed_send(ngx_event_t *ev);
static void ngx_http_fhir_bulk_finish(ngx_http_request_t *r,
    ngx_http_fhir_bulk_ctx_t *ctx);
static void ngx_http_fhir_bulk_cleanup_request(void *data);

static ngx_int_t ngx_http_fhir_bulk_add_export_dir(ngx_conf_t *cf,
    ngx_str_t *export_dir);
static void ngx_http_fhir_bulk_prepare_cancels(ngx_cycle_t *cycle,
    ngx_str_t *export_dir, ngx_uid_t user);
static ngx_int_t ngx_http_fhir_bulk_init_module(ngx_cycle_t *cycle);
static void ngx_http_fhir_bulk_exit_process(ngx_cycle_t *cycle);
static void *ngx_http_fhir_bulk_create_main_conf(ngx_conf_t *cf);

static void *ngx_http_fhir_bulk_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_fhir_bulk_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_fhir_bulk_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_fhir_bulk_base_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_fhir_bulk_retry_after(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void ngx_http_fhir_bulk_cleanup_server(void *data);


static ngx_command_t  ngx_http_fhir_bulk_commands[] = {

    { ngx_string("fhir_bulk_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_fhir_bulk_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("fhir_bulk_base_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_fhir_bulk_base_url,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, base_url),
      NULL },

    { ngx_string("fhir_bulk_pg_conninfo"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, conninfo),
      NULL },

    { ngx_string("fhir_bulk_pg_conninfo_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, conninfo_file),
      NULL },

    { ngx_string("fhir_bulk_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, thread_pool_name),
      NULL },

    { ngx_string("fhir_bulk_retry_after"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_fhir_bulk_retry_after,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("fhir_bulk_export_dir"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, export_dir),
      NULL },

    { ngx_string("fhir_bulk_max_active_exports"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, max_active_exports),
      NULL },

    { ngx_string("fhir_bulk_max_retained_exports"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, max_retained_exports),
      NULL },

    { ngx_string("fhir_bulk_max_retained_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_off_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, max_retained_size),
      NULL },

    { ngx_string("fhir_bulk_min_free_space"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_off_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, min_free_space),
      NULL },

    { ngx_string("fhir_bulk_min_free_percent"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, min_free_percent),
      NULL },

    { ngx_string("fhir_bulk_min_poll_interval"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, min_poll_interval),
      NULL },

    { ngx_string("fhir_bulk_manifest_page_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, manifest_page_size),
      NULL },

    /* the operator API (<base>/_ops/api/): only in the location that sets it */

    { ngx_string("fhir_bulk_operator_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, operator_api),
      NULL },

    { ngx_string("fhir_bulk_strict_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, strict_headers),
      NULL },

    { ngx_string("fhir_bulk_typefilter_max_terms"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, typefilter_max_terms),
      NULL },

    { ngx_string("fhir_bulk_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, auth),
      NULL },

    { ngx_string("fhir_bulk_token_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, token_key_file),
      NULL },

    { ngx_string("fhir_bulk_token_lifetime"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, token_lifetime),
      NULL },

    { ngx_string("fhir_bulk_jwks_allow_insecure"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, jwks_allow_insecure),
      NULL },

    { ngx_string("fhir_bulk_signed_url_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, signed_url_key_file),
      NULL },

    { ngx_string("fhir_bulk_signed_url_lifetime"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_bulk_loc_conf_t, signed_url_lifetime),
      NULL },

    { ngx_string("fhir_bulk_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_fhir_bulk_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_fhir_bulk_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_fhir_bulk_metrics_add_zone,   /* postconfiguration */

    ngx_http_fhir_bulk_create_main_conf,   /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_fhir_bulk_create_loc_conf,    /* create location configuration */
    ngx_http_fhir_bulk_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_http_fhir_bulk_module = {
    NGX_MODULE_V1,
    &ngx_http_fhir_bulk_module_ctx,        /* module context */
    ngx_http_fhir_bulk_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_fhir_bulk_init_module,        /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_fhir_bulk_exit_process,       /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_fhir_bulk_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r->method & (NGX_HTTP_POST|NGX_HTTP_PUT)) {
        /*
         * a Parameters resource or a Group (client_max_body_size bounds it):
         * keep it in one buffer
         */
        r->request_body_in_single_buf = 1;

        rc = ngx_http_read_client_request_body(r,
                                               ngx_http_fhir_bulk_body_handler);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_fhir_bulk_process(r);
}


static void
ngx_http_fhir_bulk_body_handler(ngx_http_request_t *r)
{
    ngx_http_finalize_request(r, ngx_http_fhir_bulk_process(r));
}


static ngx_int_t
ngx_http_fhir_bulk_process(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_thread_task_t              *task;
    ngx_pool_cleanup_t             *cln;
    fhirbulk_pending_t             *pending;
    fhirbulk_request_t              req;
    fhirbulk_response_t             resp;
    ngx_http_fhir_bulk_ctx_t       *ctx;
    ngx_http_fhir_bulk_loc_conf_t  *flcf;

    flcf = ngx_http_get_module_loc_conf(r, ngx_http_fhir_bulk_module);

    rc = ngx_http_fhir_bulk_init_request(r, flcf, &req);

    if (rc == NGX_DECLINED) {
        return ngx_http_fhir_bulk_send_error(r, NGX_HTTP_NOT_FOUND,
                   "not-found", "no route outside the FHIR base", 0);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    ngx_memzero(&resp, sizeof(fhirbulk_response_t));

    if (fhirbulk_handle_fast(flcf->server, &req, &resp, &pending)
        == FHIRBULK_DONE)
    {
        ngx_http_fhir_bulk_count(&resp.metric, (ngx_uint_t) resp.status);
        rc = ngx_http_fhir_bulk_send(r, &resp);
        fhirbulk_response_free(&resp);
        return rc;
    }

    /*
     * The request needs the database: the pending request (it owns what it
     * needs) goes to the thread pool.  From here on the request pool owns
     * it, through the cleanup, whatever happens to the request.
     */

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_fhir_bulk_ctx_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (ctx == NULL || cln == NULL) {
        fhirbulk_pending_free(pending);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->pending = pending;
    cln->handler = ngx_http_fhir_bulk_cleanup_request;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_fhir_bulk_module);

    task = ngx_thread_task_alloc(r->pool, 0);
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    task->ctx = ctx;
    task->handler = ngx_http_fhir_bulk_thread_handler;
    task->event.data = r;
    task->event.handler = ngx_http_fhir_bulk_thread_done;

    ctx->in_flight.data = r;
    ctx->in_flight.log = r->connection->log;
    ctx->in_flight.handler = ngx_http_fhir_bulk_in_flight_handler;

    /* queued before the post: the thread may start (and subtract) at once */
    if (ngx_http_fhir_bulk_counters != NULL) {
        ngx_http_fhir_bulk_metric_add(
                                &ngx_http_fhir_bulk_counters->pool_queued, 1);
    }

    if (ngx_thread_task_post(flcf->thread_pool, task) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "fhir_bulk: thread pool \"%V\" queue is full",
                      &flcf->thread_pool_name);

        if (ngx_http_fhir_bulk_counters != NULL) {
            ngx_http_fhir_bulk_metric_add(
                               &ngx_http_fhir_bulk_counters->pool_queued, -1);
            ngx_http_fhir_bulk_metric_add(
                              &ngx_http_fhir_bulk_counters->pool_rejected, 1);
        }

        /* counted as the route handle_fast() tagged */
        ngx_http_fhir_bulk_count(&resp.metric, NGX_HTTP_SERVICE_UNAVAILABLE);

        return ngx_http_fhir_bulk_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                   "transient", "the server is busy, retry later",
                   flcf->retry_after);
    }

    if (ngx_http_fhir_bulk_counters != NULL) {
        ngx_http_fhir_bulk_metric_add(&ngx_http_fhir_bulk_counters->pool_tasks,
                                      1);
    }

    ngx_add_timer(&ctx->in_flight, NGX_HTTP_FHIR_BULK_IN_FLIGHT_TICK);

    r->main->blocked++;
    r->aio = 1;
    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_fhir_bulk_in_flight_handler(ngx_event_t *ev)
{
    /* the task is still queued or running: keep the worker alive */
    ngx_add_timer(ev, NGX_HTTP_FHIR_BULK_IN_FLIGHT_TICK);
}


static ngx_int_t
ngx_http_fhir_bulk_init_request(ngx_http_request_t *r,
    ngx_http_fhir_bulk_loc_conf_t *flcf, fhirbulk_request_t *req)
{
    fhirbulk_str_t  base;

    ngx_memzero(req, sizeof(fhirbulk_request_t));

    switch (r->method) {
    case NGX_HTTP_GET:
        req->method = FHIRBULK_METHOD_GET;
        break;
    case NGX_HTTP_HEAD:
        req->method = FHIRBULK_METHOD_HEAD;
        break;
    case NGX_HTTP_POST:
        req->method = FHIRBULK_METHOD_POST;
        break;
    case NGX_HTTP_DELETE:
        req->method = FHIRBULK_METHOD_DELETE;
        break;
    case NGX_HTTP_PUT:
        req->method = FHIRBULK_METHOD_PUT;
        break;
    default:
        req->method = FHIRBULK_METHOD_OTHER;
    }

    /* route only what lies below the base path: "/fhir" or "/fhir/..." */

    base = fhirbulk_server_base_path(flcf->server);

    if (r->uri.len < base.len
        || ngx_strncmp(r->uri.data, base.data, base.len) != 0
        || (r->uri.len > base.len && r->uri.data[base.len] != '/'))
    {
        return NGX_DECLINED;
    }

    req->path.data = (const char *) r->uri.data + base.len;
    req->path.len = r->uri.len - base.len;
    req->query.data = (const char *) r->args.data;
    req->query.len = r->args.len;

    if (ngx_http_fhir_bulk_header_value(r, "Accept", sizeof("Accept") - 1,
                                        &req->accept)
        != NGX_OK
        || ngx_http_fhir_bulk_header_value(r, "Prefer", sizeof("Prefer") - 1,
                                           &req->prefer)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->headers_in.content_type) {
        req->content_type.data =
                           (const char *) r->headers_in.content_type->value.data;
        req->content_type.len = r->headers_in.content_type->value.len;
    }

    if (r->headers_in.authorization) {
        req->authorization.data =
                          (const char *) r->headers_in.authorization->value.data;
        req->authorization.len = r->headers_in.authorization->value.len;
    }

    req->remote_addr.data = (const char *) r->connection->addr_text.data;
    req->remote_addr.len = r->connection->addr_text.len;

    if ((r->method & (NGX_HTTP_POST|NGX_HTTP_PUT))
        && ngx_http_fhir_bulk_read_body(r, &req->body) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


/*
 * All values of a request header, joined with ", " (RFC 9110 list
 * semantics: "Prefer: a" + "Prefer: b" means "Prefer: a, b").
 */

static ngx_int_t
ngx_http_fhir_bulk_header_value(ngx_http_request_t *r, const char *name,
    size_t name_len, fhirbulk_str_t *out)
{
    u_char           *p;
    size_t            len;
    ngx_uint_t        i, n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    out->data = NULL;
    out->len = 0;

    len = 0;
    n = 0;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (h[i].key.len == name_len
                && ngx_strncasecmp(h[i].key.data, (u_char *) name, name_len)
                   == 0)
            {
                len += h[i].value.len + (n ? 2 : 0);
                n++;
            }
        }
    }

    if (n == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = (const char *) p;
    out->len = len;

    n = 0;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (h[i].key.len == name_len
                && ngx_strncasecmp(h[i].key.data, (u_char *) name, name_len)
                   == 0)
            {
                if (n++) {
                    *p++ = ','; *p++ = ' ';
                }

                p = ngx_cpymem(p, h[i].value.data, h[i].value.len);
            }
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_fhir_bulk_read_body(ngx_http_request_t *r, fhirbulk_str_t *out)
{
    u_char       *p;
    off_t         len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    out->data = NULL;
    out->len = 0;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? b->file_last - b->file_pos : b->last - b->pos;
    }

    if (len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, (size_t) len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = (const char *) p;
    out->len = (size_t) len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            /* a body larger than client_body_buffer_size went to a temp file */
            n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                return NGX_ERROR;
            }

            p += n;

        } else {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    return NGX_OK;
}


/* runs in a thread-pool thread: no nginx API calls here */

static void
ngx_http_fhir_bulk_thread_handler(void *data, ngx_log_t *log)
{
    ngx_http_fhir_bulk_ctx_t  *ctx = data;

    fhirbulk_counters_t  *c = ngx_http_fhir_bulk_counters;

    /* atomics only: safe on this thread */
    if (c != NULL) {
        ngx_http_fhir_bulk_metric_add(&c->pool_queued, -1);
        ngx_http_fhir_bulk_metric_add(&c->pool_running, 1);
    }

    fhirbulk_pending_run(ctx->pending, &ctx->response);

    if (c != NULL) {
        ngx_http_fhir_bulk_metric_add(&c->pool_running, -1);
    }
}


/* the task's completion event, back in the event loop; ev->data is r */

static void
ngx_http_fhir_bulk_thread_done(ngx_event_t *ev)
{
    ngx_http_request_t        *r;
    ngx_http_fhir_bulk_ctx_t  *ctx;

    r = ev->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_fhir_bulk_module);

    if (ctx->in_flight.timer_set) {
        ngx_del_timer(&ctx->in_flight);
    }

    if (ctx->response.delay_ms > 0 && !r->connection->error) {
        /*
         * The core wants the answer held back (a cancel, until no cache
         * anywhere can still show the job).  The request stays blocked, as
         * while the task ran, so that nothing frees it under the timer.
         */
        ctx->in_flight.handler = ngx_http_fhir_bulk_delayed_send;
        ngx_add_timer(&ctx->in_flight, (ngx_msec_t) ctx->response.delay_ms);
        return;
    }

    ngx_http_fhir_bulk_finish(r, ctx);
}


static void
ngx_http_fhir_bulk_delayed_send(ngx_event_t *ev)
{
    ngx_http_request_t  *r;

    r = ev->data;

    ngx_http_fhir_bulk_finish(r, ngx_http_get_module_ctx(r,
                                                ngx_http_fhir_bulk_module));
}


/* sends the task's response and releases the request held for the task */

static void
ngx_http_fhir_bulk_finish(ngx_http_request_t *r, ngx_http_fhir_bulk_ctx_t *ctx)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    c = r->connection;

    r->main->blocked--;
    r->aio = 0;

    ngx_http_set_log_request(c->log, r);

    if (c->error) {
        /* the request was terminated while the thread worked */
        fhirbulk_response_free(&ctx->response);
        ngx_http_finalize_request(r, NGX_ERROR);
        ngx_http_run_posted_requests(c);
        return;
    }

    ngx_http_fhir_bulk_count(&ctx->response.metric,
                             (ngx_uint_t) ctx->response.status);

    rc = ngx_http_fhir_bulk_send(r, &ctx->response);
    fhirbulk_response_free(&ctx->response);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/*
 * The request pool is going away: release what the core allocated.  The
 * thread cannot be running (the request stays blocked until its completion
 * event), so nothing else touches the context now.
 */

static void
ngx_http_fhir_bulk_cleanup_request(void *data)
{
    ngx_http_fhir_bulk_ctx_t  *ctx = data;

    if (ctx->in_flight.timer_set) {
        ngx_del_timer(&ctx->in_flight);
    }

    fhirbulk_pending_free(ctx->pending);
    ctx->pending = NULL;

    fhirbulk_response_free(&ctx->response);
}


ngx_int_t
ngx_http_fhir_bulk_send(ngx_http_request_t *r, fhirbulk_response_t *resp)
{
    int               i;
    size_t            len;
    u_char           *p;
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_uint_t        level;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;

    if (resp->log_message) {
        u_char  *msg, c;

        level = (resp->status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
                ? NGX_LOG_ERR : NGX_LOG_INFO;

        /*
         * the message may quote client input: control and non-ASCII bytes
         * are written as \xNN (no forged log lines), at most 2048 bytes
         * of it; the core does the same, this is defence in depth
         */
        len = ngx_min(ngx_strlen(resp->log_message), 2048);
        msg = ngx_pnalloc(r->pool, len * 4 + 1);
        if (msg == NULL) {
            return NGX_ERROR;
        }

        p = msg;
        for (i = 0; i < (int) len; i++) {
            c = (u_char) resp->log_message[i];

            if (c < 0x20 || c >= 0x7f) {
                *p++ = '\\';
                *p++ = 'x';
                *p++ = "0123456789ABCDEF"[c >> 4];
                *p++ = "0123456789ABCDEF"[c & 0xf];

            } else {
                *p++ = c;
            }
        }
        *p = '\0';

        ngx_log_error(level, r->connection->log, 0, "fhir_bulk: %s", msg);
    }

    r->headers_out.status = resp->status;

    for (i = 0; i < resp->nheaders; i++) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;

        len = ngx_strlen(resp->headers[i].name);
        h->key.data = ngx_pstrdup(r->pool, &(ngx_str_t) {
                                      len, (u_char *) resp->headers[i].name });
        h->key.len = len;

        len = ngx_strlen(resp->headers[i].value);
        h->value.data = ngx_pstrdup(r->pool, &(ngx_str_t) {
                                      len, (u_char *) resp->headers[i].value });
        h->value.len = len;

        if (h->key.data == NULL || h->value.data == NULL) {
            return NGX_ERROR;
        }
    }

    if (resp->content_type == NULL) {
        r->header_only = 1;
        r->headers_out.content_length_n = 0;
        return ngx_http_send_header(r);
    }

    len = ngx_strlen(resp->content_type);
    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, resp->content_type, len);
    r->headers_out.content_type.data = p;
    r->headers_out.content_type.len = len;
    r->headers_out.content_type_len = len;
    r->headers_out.content_length_n = resp->body_len;

    if (r->method == NGX_HTTP_HEAD || resp->body_len == 0) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, resp->body_len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last = ngx_cpymem(b->last, resp->body, resp->body_len);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_fhir_bulk_send_error(ngx_http_request_t *r, ngx_int_t status,
    const char *issue_code, const char *diagnostics, ngx_int_t retry_after)
{
    ngx_int_t            rc;
    fhirbulk_response_t  resp;

    ngx_memzero(&resp, sizeof(fhirbulk_response_t));

    fhirbulk_error_response((int) status, issue_code, diagnostics,
                            (int) retry_after, &resp);

    rc = ngx_http_fhir_bulk_send(r, &resp);
    fhirbulk_response_free(&resp);

    return rc;
}


/*
 * "<export dir>/.cancels" is prepared by the nginx master when a configuration
 * is loaded (start, reload, "nginx -t"), for nginx's user, so that a node can
 * record a cancel without write access to the export directory.  Nothing
 * about it fails the configuration: on a shared gateway an export volume that
 * is not mounted, or that root may not write (NFS root_squash), must not keep
 * the other sites down.  It is logged instead, and cancels are refused (500,
 * at "error") until the directory is usable.
 *
 * The export directory belongs to the export worker's user, who could plant
 * a symbolic link or a directory of its own as ".cancels": it is opened with
 * O_NOFOLLOW and changed only through that descriptor (never by path, as
 * ngx_create_paths() would), and a directory owned by anyone but root or
 * nginx's user is left alone.  Operators can create it themselves:
 * "install -d -o <nginx user> -m 0700 <export dir>/.cancels".
 */

static ngx_int_t
ngx_http_fhir_bulk_add_export_dir(ngx_conf_t *cf, ngx_str_t *export_dir)
{
    ngx_str_t                       *d;
    ngx_uint_t                       i;
    ngx_http_fhir_bulk_main_conf_t  *fmcf;

    fmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_fhir_bulk_module);

    d = fmcf->export_dirs.elts;

    for (i = 0; i < fmcf->export_dirs.nelts; i++) {
        if (d[i].len == export_dir->len
            && ngx_strncmp(d[i].data, export_dir->data, export_dir->len) == 0)
        {
            return NGX_OK;
        }
    }

    d = ngx_array_push(&fmcf->export_dirs);
    if (d == NULL) {
        return NGX_ERROR;
    }

    d->len = export_dir->len;
    d->data = ngx_pnalloc(cf->pool, export_dir->len + 1);
    if (d->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(d->data, export_dir->data, export_dir->len);
    d->data[d->len] = '\0';

    return NGX_OK;
}


static void *
ngx_http_fhir_bulk_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_fhir_bulk_main_conf_t  *fmcf;

    fmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_fhir_bulk_main_conf_t));
    if (fmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&fmcf->export_dirs, cf->pool, 1, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NULL;
    }

    return fmcf;
}


static ngx_int_t
ngx_http_fhir_bulk_init_module(ngx_cycle_t *cycle)
{
    ngx_str_t                       *d;
    ngx_uid_t                        user;
    ngx_uint_t                       i;
    ngx_core_conf_t                 *ccf;
    ngx_http_fhir_bulk_main_conf_t  *fmcf;

    fmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_fhir_bulk_module);
    if (fmcf == NULL) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    user = (ccf->user == (ngx_uid_t) NGX_CONF_UNSET_UINT) ? geteuid()
                                                           : ccf->user;

    d = fmcf->export_dirs.elts;

    for (i = 0; i < fmcf->export_dirs.nelts; i++) {
        ngx_http_fhir_bulk_prepare_cancels(cycle, &d[i], user);
    }

    return NGX_OK;
}


/*
 * Runs after the thread pool module's exit_process (nginx calls the hooks in
 * module order; dynamic modules come last): the pools have handed every
 * thread its exit task, but a thread may still be running its thread-local
 * destructors (our database connection closes there).  exit() must not run
 * its handlers under them: see fhirbulk_wait_for_request_threads().
 */

static void
ngx_http_fhir_bulk_exit_process(ngx_cycle_t *cycle)
{
    int  alive;

    alive = fhirbulk_wait_for_request_threads(NGX_HTTP_FHIR_BULK_EXIT_WAIT);

    if (alive != 0) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "fhir_bulk: %d thread-pool threads still running at exit",
                      alive);
    }
}


static void
ngx_http_fhir_bulk_prepare_cancels(ngx_cycle_t *cycle, ngx_str_t *export_dir,
    ngx_uid_t user)
{
    int               dfd, fd;
    ngx_err_t         err;
    struct stat       st;
    const char       *what;
    ngx_uint_t        made;

    fd = -1;
    made = 0;

    /* the export directory itself is the operator's: a link there is fine */

    dfd = open((char *) export_dir->data, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
    if (dfd == -1) {
        err = ngx_errno;
        what = "cannot open the export directory";
        goto failed;
    }

    if (mkdirat(dfd, FHIRBULK_CANCEL_MARKER_DIR, 0700) == 0) {
        made = 1;

    } else if (ngx_errno != NGX_EEXIST) {
        err = ngx_errno;
        what = "cannot create";
        goto failed;
    }

    fd = openat(dfd, FHIRBULK_CANCEL_MARKER_DIR,
                O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC);
    if (fd == -1) {
        err = ngx_errno;
        what = (err == NGX_ELOOP || err == NGX_ENOTDIR)
               ? "refused (not a directory, or a symbolic link)"
               : "cannot open";
        goto failed;
    }

    if (fstat(fd, &st) == -1) {
        err = ngx_errno;
        what = "cannot stat";
        goto failed;
    }

    if (!S_ISDIR(st.st_mode)) {
        err = 0;
        what = "refused (not a directory)";
        goto failed;
    }

    if (st.st_uid != 0 && st.st_uid != user) {
        err = 0;
        what = "refused (owned by neither root nor nginx's user)";
        goto failed;
    }

    if (st.st_uid != user && fchown(fd, user, (gid_t) -1) == -1) {
        err = ngx_errno;
        what = "cannot give to nginx's user";
        goto failed;
    }

    if ((made || (st.st_mode & 07777) != 0700) && fchmod(fd, 0700) == -1) {
        err = ngx_errno;
        what = "cannot chmod 0700";
        goto failed;
    }

    close(fd);
    close(dfd);

    return;

failed:

    ngx_log_error(NGX_LOG_WARN, cycle->log, err,
                  "fhir_bulk: \"%V/" FHIRBULK_CANCEL_MARKER_DIR "\": %s; "
                  "cancels are refused until it is a directory of nginx's "
                  "user, mode 0700 (install -d -o <user> -m 0700 "
                  "%V/" FHIRBULK_CANCEL_MARKER_DIR ")",
                  export_dir, what, export_dir);

    if (fd != -1) {
        close(fd);
    }

    if (dfd != -1) {
        close(dfd);
    }
}


static void *
ngx_http_fhir_bulk_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_fhir_bulk_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_fhir_bulk_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->base_url = { 0, NULL };
     *     conf->conninfo = { 0, NULL };
     *     conf->conninfo_file = { 0, NULL };
     *     conf->thread_pool_name = { 0, NULL };
     *     conf->thread_pool = NULL;
     *     conf->server = NULL;
     */

    conf->api = NGX_CONF_UNSET;
    conf->metrics = NGX_CONF_UNSET;
    conf->retry_after = NGX_CONF_UNSET;
    conf->max_active_exports = NGX_CONF_UNSET;
    conf->max_retained_exports = NGX_CONF_UNSET;
    conf->max_retained_size = NGX_CONF_UNSET;
    conf->min_free_space = NGX_CONF_UNSET;
    conf->min_free_percent = NGX_CONF_UNSET;
    conf->strict_headers = NGX_CONF_UNSET;
    conf->typefilter_max_terms = NGX_CONF_UNSET;
    conf->min_poll_interval = NGX_CONF_UNSET_MSEC;
    conf->manifest_page_size = NGX_CONF_UNSET;
    conf->operator_api = NGX_CONF_UNSET;
    conf->auth = NGX_CONF_UNSET;
    conf->token_lifetime = NGX_CONF_UNSET;
    conf->jwks_allow_insecure = NGX_CONF_UNSET;
    conf->signed_url_lifetime = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_fhir_bulk_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_fhir_bulk_loc_conf_t *prev = parent;
    ngx_http_fhir_bulk_loc_conf_t *conf = child;

    char                       err[512];
    ngx_pool_cleanup_t        *cln;
    fhirbulk_server_options_t  opts;

    /* not inherited: the content handler is per location, too */
    if (conf->api == NGX_CONF_UNSET) {
        conf->api = 0;
    }

    if (conf->metrics == NGX_CONF_UNSET) {
        conf->metrics = 0;
    }

    ngx_conf_merge_str_value(conf->base_url, prev->base_url, "");
    ngx_conf_merge_str_value(conf->conninfo, prev->conninfo, "");
    ngx_conf_merge_str_value(conf->conninfo_file, prev->conninfo_file, "");
    ngx_conf_merge_str_value(conf->thread_pool_name, prev->thread_pool_name,
                             FHIRBULK_DEFAULT_THREAD_POOL);
    ngx_conf_merge_value(conf->retry_after, prev->retry_after,
                         FHIRBULK_DEFAULT_RETRY_AFTER);
    ngx_conf_merge_str_value(conf->export_dir, prev->export_dir, "");
    ngx_conf_merge_value(conf->max_active_exports, prev->max_active_exports,
                         FHIRBULK_DEFAULT_MAX_ACTIVE_EXPORTS);
    ngx_conf_merge_value(conf->max_retained_exports, prev->max_retained_exports,
                         FHIRBULK_DEFAULT_MAX_RETAINED_EXPORTS);
    ngx_conf_merge_off_value(conf->max_retained_size, prev->max_retained_size,
                             (off_t) FHIRBULK_DEFAULT_MAX_RETAINED_BYTES);
    ngx_conf_merge_off_value(conf->min_free_space, prev->min_free_space,
                             (off_t) FHIRBULK_DEFAULT_MIN_FREE_BYTES);
    ngx_conf_merge_value(conf->min_free_percent, prev->min_free_percent,
                         FHIRBULK_DEFAULT_MIN_FREE_PERCENT);
    ngx_conf_merge_value(conf->strict_headers, prev->strict_headers,
                         FHIRBULK_DEFAULT_STRICT_HEADERS);
    ngx_conf_merge_value(conf->typefilter_max_terms, prev->typefilter_max_terms,
                         FHIRBULK_DEFAULT_TYPEFILTER_MAX_TERMS);
    ngx_conf_merge_msec_value(conf->min_poll_interval, prev->min_poll_interval,
                              FHIRBULK_DEFAULT_MIN_POLL_INTERVAL_MS);
    ngx_conf_merge_value(conf->manifest_page_size, prev->manifest_page_size,
                         FHIRBULK_DEFAULT_MANIFEST_PAGE_SIZE);
    ngx_conf_merge_value(conf->operator_api, prev->operator_api, 0);

    /* secure by default: authorization is on unless switched off */
    ngx_conf_merge_value(conf->auth, prev->auth, FHIRBULK_DEFAULT_AUTH);
    ngx_conf_merge_str_value(conf->token_key_file, prev->token_key_file, "");
    ngx_conf_merge_value(conf->token_lifetime, prev->token_lifetime,
                         FHIRBULK_DEFAULT_TOKEN_LIFETIME);
    ngx_conf_merge_value(conf->jwks_allow_insecure, prev->jwks_allow_insecure,
                         FHIRBULK_DEFAULT_JWKS_ALLOW_INSECURE);
    ngx_conf_merge_str_value(conf->signed_url_key_file,
                             prev->signed_url_key_file, "");
    ngx_conf_merge_value(conf->signed_url_lifetime, prev->signed_url_lifetime,
                         FHIRBULK_DEFAULT_SIGNED_URL_LIFETIME);

    if (conf->token_lifetime < 1
        || conf->token_lifetime > FHIRBULK_MAX_TOKEN_LIFETIME)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_bulk_token_lifetime\" must be from 1s to "
                           "%ds (SMART access tokens are short-lived)",
                           FHIRBULK_MAX_TOKEN_LIFETIME);
        return NGX_CONF_ERROR;
    }

    if (conf->signed_url_lifetime < 1
        || conf->signed_url_lifetime > FHIRBULK_MAX_SIGNED_URL_LIFETIME)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_bulk_signed_url_lifetime\" must be from 1s "
                           "to 1h (signed URLs are bearer capabilities)");
        return NGX_CONF_ERROR;
    }

    /* the core takes ints: refuse what a cast would turn into "no limit" */

    if (conf->max_active_exports < 0
        || conf->max_active_exports > FHIRBULK_MAX_EXPORTS_LIMIT)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_bulk_max_active_exports\" must be from 0 "
                           "to %d", FHIRBULK_MAX_EXPORTS_LIMIT);
        return NGX_CONF_ERROR;
    }

    if (conf->max_retained_exports < 0
        || conf->max_retained_exports > FHIRBULK_MAX_EXPORTS_LIMIT)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_bulk_max_retained_exports\" must be from 0 "
                           "to %d", FHIRBULK_MAX_EXPORTS_LIMIT);
        return NGX_CONF_ERROR;
    }

    if (conf->min_free_percent < 0
        || conf->min_free_percent > FHIRBULK_MAX_MIN_FREE_PERCENT)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_bulk_min_free_percent\" must be from 0 "
                           "to %d", FHIRBULK_MAX_MIN_FREE_PERCENT);
        return NGX_CONF_ERROR;
    }

    if (conf->typefilter_max_terms < 1
        || conf->typefilter_max_terms > FHIRBULK_MAX_TYPEFILTER_MAX_TERMS)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_bulk_typefilter_max_terms\" must be from 1 "
                           "to %d", FHIRBULK_MAX_TYPEFILTER_MAX_TERMS);
        return NGX_CONF_ERROR;
    }

    if (conf->manifest_page_size < 1
        || conf->manifest_page_size > FHIRBULK_MAX_MANIFEST_PAGE_SIZE)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_bulk_manifest_page_size\" must be from 1 "
                           "to %d", FHIRBULK_MAX_MANIFEST_PAGE_SIZE);
        return NGX_CONF_ERROR;
    }

    if (conf->min_poll_interval > FHIRBULK_MAX_MIN_POLL_INTERVAL_MS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_bulk_min_poll_interval\" must be at most "
                           "1h");
        return NGX_CONF_ERROR;
    }

    if (conf->metrics) {
        return ngx_http_fhir_bulk_metrics_merge(cf, conf);
    }

    if (!conf->api) {
        return NGX_CONF_OK;
    }

    if (conf->base_url.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_bulk_api\" requires \"fhir_bulk_base_url\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_fhir_bulk_require_conninfo(cf, conf, "fhir_bulk_api")
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    conf->thread_pool = ngx_thread_pool_add(cf, &conf->thread_pool_name);
    if (conf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    if (conf->export_dir.len
        && ngx_http_fhir_bulk_add_export_dir(cf, &conf->export_dir)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* a location that inherits everything shares its parent's server */

    if (prev->server != NULL
        && prev->base_url.len == conf->base_url.len
        && ngx_strncmp(prev->base_url.data, conf->base_url.data,
                       conf->base_url.len) == 0
        && prev->conninfo.len == conf->conninfo.len
        && ngx_strncmp(prev->conninfo.data, conf->conninfo.data,
                       conf->conninfo.len) == 0
        && prev->retry_after == conf->retry_after
        && prev->export_dir.len == conf->export_dir.len
        && ngx_strncmp(prev->export_dir.data, conf->export_dir.data,
                       conf->export_dir.len) == 0
        && prev->max_active_exports == conf->max_active_exports
        && prev->max_retained_exports == conf->max_retained_exports
        && prev->max_retained_size == conf->max_retained_size
        && prev->min_free_space == conf->min_free_space
        && prev->min_free_percent == conf->min_free_percent
        && prev->strict_headers == conf->strict_headers
        && prev->typefilter_max_terms == conf->typefilter_max_terms
        && prev->min_poll_interval == conf->min_poll_interval
        && prev->manifest_page_size == conf->manifest_page_size
        && prev->operator_api == conf->operator_api
        && prev->auth == conf->auth
        && prev->token_key_file.data == conf->token_key_file.data
        && prev->token_lifetime == conf->token_lifetime
        && prev->jwks_allow_insecure == conf->jwks_allow_insecure
        && prev->signed_url_key_file.data == conf->signed_url_key_file.data
        && prev->signed_url_lifetime == conf->signed_url_lifetime)
    {
        conf->server = prev->server;
        return NGX_CONF_OK;
    }

    ngx_memzero(&opts, sizeof(fhirbulk_server_options_t));
    opts.base_url.data = (const char *) conf->base_url.data;
    opts.base_url.len = conf->base_url.len;
    opts.conninfo.data = (const char *) conf->conninfo.data;
    opts.conninfo.len = conf->conninfo.len;
    opts.token_lifetime = (int) conf->token_lifetime;
    opts.retry_after_unavailable = (int) conf->retry_after;
    opts.export_dir.data = (const char *) conf->export_dir.data;
    opts.export_dir.len = conf->export_dir.len;
    opts.max_active_exports = (int) conf->max_active_exports;
    opts.max_retained_exports = (int) conf->max_retained_exports;
    opts.max_retained_bytes = (long long) conf->max_retained_size;
    opts.min_free_bytes = (long long) conf->min_free_space;
    opts.min_free_percent = (int) conf->min_free_percent;
    opts.strict_kickoff_headers = (int) conf->strict_headers;
    opts.typefilter_max_terms = (int) conf->typefilter_max_terms;
    opts.min_poll_interval_ms = (int) conf->min_poll_interval;
    opts.manifest_page_size = (int) conf->manifest_page_size;
    opts.operator_api = (int) conf->operator_api;
    opts.auth_enabled = (int) conf->auth;
    opts.token_lifetime = (int) conf->token_lifetime;
    opts.jwks_allow_insecure = (int) conf->jwks_allow_insecure;
    opts.signed_url_lifetime = (int) conf->signed_url_lifetime;

    if (ngx_http_fhir_bulk_full_name(cf, &conf->token_key_file) != NGX_OK
        || ngx_http_fhir_bulk_full_name(cf, &conf->signed_url_key_file)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    opts.token_key_file.data = (const char *) conf->token_key_file.data;
    opts.token_key_file.len = conf->token_key_file.len;
    opts.signed_url_key_file.data =
                                (const char *) conf->signed_url_key_file.data;
    opts.signed_url_key_file.len = conf->signed_url_key_file.len;

    err[0] = '\0';
    conf->server = fhirbulk_server_create(&opts, err, sizeof(err));

    if (conf->server == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fhir_bulk: invalid configuration: %s", err);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        fhirbulk_server_destroy(conf->server);
        conf->server = NULL;
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_fhir_bulk_cleanup_server;
    cln->data = conf->server;

    return NGX_CONF_OK;
}


static char *
ngx_http_fhir_bulk_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_fhir_bulk_loc_conf_t *flcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (flcf->api != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    flcf->api = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_fhir_bulk_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_fhir_bulk_base_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_fhir_bulk_loc_conf_t *flcf = conf;

    ngx_str_t  *value, url;

    if (flcf->base_url.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    url = value[1];

    if (!(url.len > 7 && ngx_strncasecmp(url.data, (u_char *) "http://", 7)
                         == 0)
        && !(url.len > 8 && ngx_strncasecmp(url.data, (u_char *) "https://", 8)
                            == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive: "
                           "an absolute http:// or https:// URL is required",
                           &url, &cmd->name);
        return NGX_CONF_ERROR;
    }

    while (url.len > 1 && url.data[url.len - 1] == '/') {
        url.len--;
    }

    flcf->base_url = url;

    return NGX_CONF_OK;
}


static char *
ngx_http_fhir_bulk_retry_after(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_fhir_bulk_loc_conf_t *flcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (flcf->retry_after != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;
    n = ngx_atoi(value[1].data, value[1].len);

    if (n < 1 || n > FHIRBULK_MAX_RETRY_AFTER) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive: "
                           "seconds from 1 to %d are required",
                           &value[1], &cmd->name, FHIRBULK_MAX_RETRY_AFTER);
        return NGX_CONF_ERROR;
    }

    flcf->retry_after = n;

    return NGX_CONF_OK;
}


/*
 * A location that needs the database names it exactly once: by
 * "fhir_bulk_pg_conninfo" or by "fhir_bulk_pg_conninfo_file".
 */

char *
ngx_http_fhir_bulk_require_conninfo(ngx_conf_t *cf,
    ngx_http_fhir_bulk_loc_conf_t *conf, const char *directive)
{
    if (conf->conninfo.len && conf->conninfo_file.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_bulk_pg_conninfo\" and "
                           "\"fhir_bulk_pg_conninfo_file\" are exclusive");
        return NGX_CONF_ERROR;
    }

    if (conf->conninfo_file.len
        && ngx_http_fhir_bulk_read_conninfo_file(cf, conf) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->conninfo.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" requires \"fhir_bulk_pg_conninfo\" "
                           "or \"fhir_bulk_pg_conninfo_file\"", directive);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The conninfo file keeps the database password out of the (usually world
 * readable) nginx configuration.  It is read once, by the master, at
 * configuration time; surrounding white space is ignored.
 */

char *
ngx_http_fhir_bulk_read_conninfo_file(ngx_conf_t *cf,
    ngx_http_fhir_bulk_loc_conf_t *conf)
{
    u_char           *buf, *start, *end;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t         name;
    ngx_file_info_t   fi;

    name = conf->conninfo_file;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"fhir_bulk_pg_conninfo_file\": cannot open \"%V\"",
                           &name);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 64 * 1024)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_bulk_pg_conninfo_file\": \"%V\" is not a "
                           "readable file of at most 64k", &name);
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    buf = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);
    if (buf == NULL) {
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, buf, (size_t) ngx_file_size(&fi));
    ngx_close_file(fd);

    if (n < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"fhir_bulk_pg_conninfo_file\": cannot read \"%V\"",
                           &name);
        return NGX_CONF_ERROR;
    }

    start = buf;
    end = buf + n;

    while (start < end && (*start == ' ' || *start == '\t'
                           || *start == '\r' || *start == '\n'))
    {
        start++;
    }

    while (end > start && (end[-1] == ' ' || end[-1] == '\t'
                           || end[-1] == '\r' || end[-1] == '\n'))
    {
        end--;
    }

    if (start == end) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_bulk_pg_conninfo_file\": \"%V\" is empty",
                           &name);
        return NGX_CONF_ERROR;
    }

    conf->conninfo.data = start;
    conf->conninfo.len = end - start;

    return NGX_CONF_OK;
}


static void
ngx_http_fhir_bulk_cleanup_server(void *data)
{
    fhirbulk_server_destroy(data);
}


/* an absolute path, NUL-terminated; empty stays empty */

ngx_int_t
ngx_http_fhir_bulk_full_name(ngx_conf_t *cf, ngx_str_t *name)
{
    if (name->len == 0) {
        return NGX_OK;
    }

    return ngx_conf_full_name(cf->cycle, name, 1);
}
