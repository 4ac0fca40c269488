
/*
 * Copyright (C) ngx_fhir_bulk authors
 * Licensed under the Apache License, Version 2.0.
 *
 * Metrics of ngx_http_fhir_bulk_module ("fhir_bulk_metrics"), part of the
 * API module (its directive, its configuration) in a file of its own.
 *
 * Counters: one shared memory zone, "fhir_bulk_metrics", holds a
 * fhirbulk_counters_t (core/include/fhirbulk/fhirbulk.h) for all worker
 * processes of this nginx; every field is an ngx_atomic_t and is only ever
 * changed with ngx_atomic_fetch_add(), so no lock is needed and the thread
 * pool's threads may add too.  What a response counts as comes from the core
 * (fhirbulk_response_t.metric); the module adds the status class.  The zone
 * has the same name, size and tag in every configuration, so nginx hands the
 * old zone to the new cycle on reload and the counters carry on (its init
 * keeps the old data).  Counters restart with nginx, as Prometheus expects.
 *
 * The metrics location answers with the Prometheus text format.  The
 * rendering, and the database gauges behind it, run on the location's thread
 * pool (fhirbulk_metrics_render()); the event loop only copies the counters.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_fhir_bulk.h"


#define NGX_HTTP_FHIR_BULK_METRICS_ZONE  "fhir_bulk_metrics"

/* as the API module: keeps a worker that shuts down alive for the task */
#define NGX_HTTP_FHIR_BULK_METRICS_TICK  60000


typedef struct {
    fhirbulk_metrics_t   *source;
    fhirbulk_counters_t   snapshot;
    fhirbulk_response_t   response;
    ngx_event_t           in_flight;
} ngx_http_fhir_bulk_metrics_ctx_t;


static ngx_int_t ngx_http_fhir_bulk_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_fhir_bulk_metrics_handler(ngx_http_request_t *r);
static void ngx_http_fhir_bulk_metrics_thread(void *data, ngx_log_t *log);
static void ngx_http_fhir_bulk_metrics_done(ngx_event_t *ev);
static void ngx_http_fhir_bulk_metrics_tick(ngx_event_t *ev);
static void ngx_http_fhir_bulk_metrics_cleanup(void *data);
static void ngx_http_fhir_bulk_metrics_destroy(void *data);


/*
 * The counters of this nginx, in the shared zone; NULL until the zone is
 * initialized (nothing counts before the first cycle's zones exist).
 */
fhirbulk_counters_t  *ngx_http_fhir_bulk_counters;


#define ngx_http_fhir_bulk_atomic(field)                                     \
    ((ngx_atomic_t *) (void *) &(field))


/* the fields are unsigned long: the same as ngx_atomic_uint_t */
typedef char ngx_http_fhir_bulk_atomic_size_check
    [sizeof(unsigned long) == sizeof(ngx_atomic_uint_t) ? 1 : -1];


void
ngx_http_fhir_bulk_metric_add(unsigned long *counter, ngx_int_t n)
{
    if (ngx_http_fhir_bulk_counters != NULL) {
        (void) ngx_atomic_fetch_add(ngx_http_fhir_bulk_atomic(*counter),
                                    (ngx_atomic_int_t) n);
    }
}


void
ngx_http_fhir_bulk_count(fhirbulk_metric_tag_t *tag, ngx_uint_t status)
{
    int                   route, code;
    fhirbulk_counters_t  *c;

    c = ngx_http_fhir_bulk_counters;

    if (c == NULL) {
        return;
    }

    route = (int) tag->route;

    if (route < 0 || route >= FHIRBULK_METRIC_ROUTES) {
        route = FHIRBULK_METRIC_OTHER;
    }

    code = fhirbulk_metric_code_index((int) status);

    (void) ngx_atomic_fetch_add(
                   ngx_http_fhir_bulk_atomic(c->responses[route][code]), 1);

    if (route == FHIRBULK_METRIC_TOKEN
        && tag->token > FHIRBULK_TOKEN_NONE
        && tag->token < FHIRBULK_TOKEN_OUTCOMES)
    {
        (void) ngx_atomic_fetch_add(
                          ngx_http_fhir_bulk_atomic(c->tokens[tag->token]), 1);
    }

    if (tag->db_error) {
        (void) ngx_atomic_fetch_add(
                          ngx_http_fhir_bulk_atomic(c->database_errors), 1);
    }
}


/* the files module's log phase: one download, whatever its answer */

void
ngx_http_fhir_bulk_count_download(ngx_http_request_t *r)
{
    off_t                  sent;
    fhirbulk_metric_tag_t  tag;

    if (ngx_http_fhir_bulk_counters == NULL) {
        return;
    }

    ngx_memzero(&tag, sizeof(fhirbulk_metric_tag_t));
    tag.route = FHIRBULK_METRIC_DOWNLOAD;

    ngx_http_fhir_bulk_count(&tag, r->headers_out.status);

    /* as $body_bytes_sent */
    sent = r->connection->sent - (off_t) r->header_size;

    if (sent > 0) {
        ngx_http_fhir_bulk_metric_add(
                             &ngx_http_fhir_bulk_counters->download_bytes,
                             (ngx_int_t) sent);
    }
}


/* postconfiguration of the API module: the zone, whether or not scraped */

ngx_int_t
ngx_http_fhir_bulk_metrics_add_zone(ngx_conf_t *cf)
{
    ngx_str_t        name = ngx_string(NGX_HTTP_FHIR_BULK_METRICS_ZONE);
    ngx_shm_zone_t  *shm_zone;

    shm_zone = ngx_shared_memory_add(cf, &name, 8 * ngx_pagesize,
                                     &ngx_http_fhir_bulk_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_fhir_bulk_metrics_init_zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_fhir_bulk_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t      *shpool;
    fhirbulk_counters_t  *c;

    if (data) {
        /* a reload: the previous cycle's zone, counters and all */
        shm_zone->data = data;
        ngx_http_fhir_bulk_counters = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        ngx_http_fhir_bulk_counters = shpool->data;
        return NGX_OK;
    }

    c = ngx_slab_calloc(shpool, sizeof(fhirbulk_counters_t));
    if (c == NULL) {
        return NGX_ERROR;
    }

    shpool->data = c;
    shm_zone->data = c;
    ngx_http_fhir_bulk_counters = c;

    return NGX_OK;
}


/* "fhir_bulk_metrics": this location answers with the metrics */

char *
ngx_http_fhir_bulk_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_fhir_bulk_loc_conf_t *flcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (flcf->metrics != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    if (flcf->api == 1) {
        return "cannot be in a \"fhir_bulk_api\" location";
    }

    flcf->metrics = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_fhir_bulk_metrics_handler;

    return NGX_CONF_OK;
}


/* merge_loc_conf of a metrics location: the connection and the pool */

char *
ngx_http_fhir_bulk_metrics_merge(ngx_conf_t *cf,
    ngx_http_fhir_bulk_loc_conf_t *conf)
{
    char                 err[512];
    fhirbulk_str_t       conninfo;
    ngx_pool_cleanup_t  *cln;

    if (conf->api == 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_bulk_metrics\" cannot be in a "
                           "\"fhir_bulk_api\" location");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_fhir_bulk_require_conninfo(cf, conf, "fhir_bulk_metrics")
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    conf->thread_pool = ngx_thread_pool_add(cf, &conf->thread_pool_name);
    if (conf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    conninfo.data = (const char *) conf->conninfo.data;
    conninfo.len = conf->conninfo.len;

    err[0] = '\0';
    conf->metrics_source = fhirbulk_metrics_create(conninfo, err, sizeof(err));

    if (conf->metrics_source == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fhir_bulk_metrics: %s", err);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        fhirbulk_metrics_destroy(conf->metrics_source);
        conf->metrics_source = NULL;
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_fhir_bulk_metrics_destroy;
    cln->data = conf->metrics_source;

    return NGX_CONF_OK;
}


static void
ngx_http_fhir_bulk_metrics_destroy(void *data)
{
    fhirbulk_metrics_destroy(data);
}


static ngx_int_t
ngx_http_fhir_bulk_metrics_handler(ngx_http_request_t *r)
{
    ngx_uint_t                         i, n;
    ngx_int_t                          rc;
    ngx_thread_task_t                 *task;
    ngx_pool_cleanup_t                *cln;
    volatile unsigned long            *src;
    unsigned long                     *dst;
    ngx_http_fhir_bulk_loc_conf_t     *flcf;
    ngx_http_fhir_bulk_metrics_ctx_t  *ctx;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    flcf = ngx_http_get_module_loc_conf(r, ngx_http_fhir_bulk_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_fhir_bulk_metrics_ctx_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (ctx == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_fhir_bulk_metrics_cleanup;
    cln->data = ctx;

    ctx->source = flcf->metrics_source;

    /* each field read once, atomically (aligned words) */

    if (ngx_http_fhir_bulk_counters != NULL) {
        src = (volatile unsigned long *) ngx_http_fhir_bulk_counters;
        dst = (unsigned long *) &ctx->snapshot;
        n = sizeof(fhirbulk_counters_t) / sizeof(unsigned long);

        for (i = 0; i < n; i++) {
            dst[i] = src[i];
        }
    }

    ngx_http_set_ctx(r, ctx, ngx_http_fhir_bulk_module);

    task = ngx_thread_task_alloc(r->pool, 0);
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    task->ctx = ctx;
    task->handler = ngx_http_fhir_bulk_metrics_thread;
    task->event.data = r;
    task->event.handler = ngx_http_fhir_bulk_metrics_done;

    ctx->in_flight.data = r;
    ctx->in_flight.log = r->connection->log;
    ctx->in_flight.handler = ngx_http_fhir_bulk_metrics_tick;

    if (ngx_thread_task_post(flcf->thread_pool, task) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "fhir_bulk_metrics: thread pool \"%V\" queue is full",
                      &flcf->thread_pool_name);
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    ngx_add_timer(&ctx->in_flight, NGX_HTTP_FHIR_BULK_METRICS_TICK);

    r->main->blocked++;
    r->aio = 1;
    r->main->count++;

    return NGX_DONE;
}


/* a thread-pool thread: the core renders (and may query the database) */

static void
ngx_http_fhir_bulk_metrics_thread(void *data, ngx_log_t *log)
{
    ngx_http_fhir_bulk_metrics_ctx_t  *ctx = data;

    fhirbulk_metrics_render(ctx->source, &ctx->snapshot, &ctx->response);
}


static void
ngx_http_fhir_bulk_metrics_tick(ngx_event_t *ev)
{
    ngx_add_timer(ev, NGX_HTTP_FHIR_BULK_METRICS_TICK);
}


static void
ngx_http_fhir_bulk_metrics_done(ngx_event_t *ev)
{
    ngx_int_t                          rc;
    ngx_connection_t                  *c;
    ngx_http_request_t                *r;
    ngx_http_fhir_bulk_metrics_ctx_t  *ctx;

    r = ev->data;
    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_fhir_bulk_module);

    if (ctx->in_flight.timer_set) {
        ngx_del_timer(&ctx->in_flight);
    }

    r->main->blocked--;
    r->aio = 0;

    ngx_http_set_log_request(c->log, r);

    if (c->error) {
        ngx_http_finalize_request(r, NGX_ERROR);
        ngx_http_run_posted_requests(c);
        return;
    }

    rc = ngx_http_fhir_bulk_send(r, &ctx->response);
    fhirbulk_response_free(&ctx->response);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_fhir_bulk_metrics_cleanup(void *data)
{
    ngx_http_fhir_bulk_metrics_ctx_t  *ctx = data;

    if (ctx->in_flight.timer_set) {
        ngx_del_timer(&ctx->in_flight);
    }

    fhirbulk_response_free(&ctx->response);
}
