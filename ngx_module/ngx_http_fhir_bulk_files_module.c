
/*
 * Copyright (C) ngx_fhir_bulk authors
 * Licensed under the Apache License, Version 2.0.
 *
 * ngx_http_fhir_bulk_files_module: export file downloads ("fhir_bulk_files"),
 * the second module of ngx_http_fhir_bulk_module.so.  It serves the files
 * the export workers write, the way the static module serves files, once the
 * core (fhirbulk_files_authorize) has decided who may have them, without the
 * database: a bearer token of the job's owner, or a signed URL.  A job with a
 * cancel marker has no files.  It masks URL signatures in the logged request
 * line and writes each download to the audit trail.
 *
 * Authorization, key files, token lifetime and the audit trail's database
 * are the API module's directives (ngx_http_fhir_bulk.h); a files location
 * reads them from the API module's configuration of the same location.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_fhir_bulk.h"

#if (NGX_LINUX)
#include <sys/syscall.h>
#include <linux/openat2.h>
#endif

#if (NGX_LINUX && defined SYS_openat2 && defined RESOLVE_BENEATH)
#define NGX_HTTP_FHIR_BULK_OPENAT2  1
#else
#define NGX_HTTP_FHIR_BULK_OPENAT2  0
#endif


typedef struct {
    ngx_str_t             files_dir;       /* not inherited */
    fhirbulk_files_t     *files;
    /*
     * files_dir opened O_PATH by each worker process on its first download
     * (ngx_http_fhir_bulk_open_beneath): what openat2() resolves paths beneath
     */
    ngx_fd_t              root_fd;
    time_t                root_checked;
} ngx_http_fhir_bulk_files_loc_conf_t;


/* per download, for the audit record written in the log phase */
typedef struct {
    fhirbulk_files_t     *files;
    ngx_str_t             target;
    char                  client[257];
} ngx_http_fhir_bulk_download_ctx_t;


static ngx_int_t ngx_http_fhir_bulk_files_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_fhir_bulk_authorize_file(ngx_http_request_t *r,
    ngx_http_fhir_bulk_files_loc_conf_t *fcf, ngx_str_t *rel,
    fhirbulk_str_t *job, fhirbulk_str_t *file, ngx_uint_t *allowed);
static ngx_int_t ngx_http_fhir_bulk_open_file(ngx_http_request_t *r,
    ngx_http_fhir_bulk_files_loc_conf_t *fcf, ngx_str_t *path,
    ngx_uint_t probe, ngx_open_file_info_t *of);
static ngx_int_t ngx_http_fhir_bulk_cancelled(ngx_http_request_t *r,
    ngx_http_fhir_bulk_files_loc_conf_t *fcf, fhirbulk_str_t *job);
#if (NGX_HTTP_FHIR_BULK_OPENAT2)
static ngx_fd_t ngx_http_fhir_bulk_open_beneath(ngx_http_request_t *r,
    ngx_http_fhir_bulk_files_loc_conf_t *fcf, const char *name, int flags,
    ngx_uint_t revalidate);
#endif
static ngx_int_t ngx_http_fhir_bulk_mask_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_fhir_bulk_log_handler(ngx_http_request_t *r);
static void *ngx_http_fhir_bulk_files_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_fhir_bulk_files_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_fhir_bulk_files(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_fhir_bulk_create_files(ngx_conf_t *cf,
    ngx_http_fhir_bulk_files_loc_conf_t *fcf,
    ngx_http_fhir_bulk_loc_conf_t *conf);
static void ngx_http_fhir_bulk_cleanup_files(void *data);
static ngx_int_t ngx_http_fhir_bulk_files_postconfiguration(ngx_conf_t *cf);


static ngx_command_t  ngx_http_fhir_bulk_files_commands[] = {

    { ngx_string("fhir_bulk_files"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_fhir_bulk_files,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_fhir_bulk_files_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_fhir_bulk_files_postconfiguration, /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_fhir_bulk_files_create_loc_conf, /* create location configuration */
    ngx_http_fhir_bulk_files_merge_loc_conf   /* merge location configuration */
};


ngx_module_t  ngx_http_fhir_bulk_files_module = {
    NGX_MODULE_V1,
    &ngx_http_fhir_bulk_files_module_ctx,  /* module context */
    ngx_http_fhir_bulk_files_commands,     /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * Export files: GET/HEAD <location>/<job id>/<file name> from the export
 * directory, the way the static module serves files (open file cache,
 * sendfile, Range, ETag, Last-Modified, conditional requests), plus what
 * a bulk-data client needs: the NDJSON media type, the precompressed
 * "<file>.gz" twin with Content-Encoding: gzip when the client accepts it
 * (never compressing per request), and OperationOutcome errors.  Names are
 * checked against the core's grammar of the names workers write
 * (fhirbulk_files_split_path), so no other file is reachable.
 */

static ngx_int_t
ngx_http_fhir_bulk_files_handler(ngx_http_request_t *r)
{
    u_char                               *last;
    size_t                                root;
    ngx_int_t                             rc;
    ngx_str_t                             rel, path;
    ngx_buf_t                            *b;
    ngx_uint_t                            gzip, allowed;
    ngx_chain_t                           out;
    fhirbulk_str_t                        job, file;
    ngx_table_elt_t                      *h;
    ngx_open_file_info_t                  of;
    ngx_http_core_loc_conf_t             *clcf;
    ngx_http_fhir_bulk_files_loc_conf_t  *fcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        rc = ngx_http_fhir_bulk_send_error(r, NGX_HTTP_NOT_ALLOWED,
                 "not-supported", "export files support GET and HEAD only",
                 0);
        return rc;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    fcf = ngx_http_get_module_loc_conf(r, ngx_http_fhir_bulk_files_module);

    if (r->uri.len <= clcf->name.len
        || ngx_strncmp(r->uri.data, clcf->name.data, clcf->name.len) != 0)
    {
        goto not_found;
    }

    rel.data = r->uri.data + clcf->name.len;
    rel.len = r->uri.len - clcf->name.len;

    /* the core's file-name grammar: nothing but an export file is reachable */

    if (!fhirbulk_files_split_path((fhirbulk_str_t) {
                                       (const char *) rel.data, rel.len },
                                   &job, &file))
    {
        goto not_found;
    }

    if (fcf->files) {
        rc = ngx_http_fhir_bulk_authorize_file(r, fcf, &rel, &job, &file,
                                               &allowed);

        if (!allowed) {
            return rc;
        }
    }

    /* "<dir>/<job>/<file>" plus room for ".gz" */

    root = fcf->files_dir.len;
    path.data = ngx_pnalloc(r->pool, root + 1 + rel.len + sizeof(".gz"));
    if (path.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = ngx_cpymem(path.data, fcf->files_dir.data, root);
    *last++ = '/';
    last = ngx_cpymem(last, rel.data, rel.len);

    gzip = 0;

#if (NGX_HTTP_GZIP)
    if (ngx_http_gzip_ok(r) == NGX_OK) {
        ngx_memcpy(last, ".gz", sizeof(".gz"));
        path.len = last + 3 - path.data;

        rc = ngx_http_fhir_bulk_open_file(r, fcf, &path, 1, &of);

        if (rc == NGX_OK) {
            gzip = 1;

        } else if (rc != NGX_DECLINED) {
            goto failed;
        }
    }
#endif

    if (!gzip) {
        *last = '\0';
        path.len = last - path.data;

        rc = ngx_http_fhir_bulk_open_file(r, fcf, &path, 0, &of);

        if (rc == NGX_DECLINED) {
            goto not_found;
        }

        if (rc != NGX_OK) {
            goto failed;
        }
    }

    /* checked once the file is open: a cancel acknowledged before now wins */

    rc = ngx_http_fhir_bulk_cancelled(r, fcf, &job);

    if (rc == NGX_OK) {
        goto not_found;
    }

    if (rc != NGX_DECLINED) {
        goto failed;
    }

    r->root_tested = !r->error_page;

    r->connection->log->action = "sending export file to client";

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = of.size;
    r->headers_out.last_modified_time = of.mtime;

    ngx_str_set(&r->headers_out.content_type, "application/fhir+ndjson");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (ngx_http_set_etag(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* exported files hold health data: keep them out of shared caches */

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "private, no-store");

    if (gzip) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Content-Encoding");
        ngx_str_set(&h->value, "gzip");
        r->headers_out.content_encoding = h;
    }

    /* the representation depends on Accept-Encoding either way */

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Vary");
    ngx_str_set(&h->value, "Accept-Encoding");

    r->allow_ranges = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->file = ngx_pcalloc(r->pool, sizeof(ngx_file_t));
    if (b->file == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b->file_pos = 0;
    b->file_last = of.size;

    b->in_file = b->file_last ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;
    b->sync = (b->last_buf || b->in_file) ? 0 : 1;

    b->file->fd = of.fd;
    b->file->name = path;
    b->file->log = r->connection->log;
    b->file->directio = of.is_directio;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);

not_found:

    return ngx_http_fhir_bulk_send_error(r, NGX_HTTP_NOT_FOUND, "not-found",
               "no such export file (it may have expired or been cancelled)",
               0);

failed:

    /* the reason is in the error log */

    return ngx_http_fhir_bulk_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
               "exception", "the export file cannot be served", 0);
}


/*
 * Who may have the file is the core's decision (bearer token of the job's
 * owner with a scope for the file's type, or a signed URL), taken without
 * the database.  *allowed: go on; otherwise the refusal has been sent and
 * the return value is the handler's.  Either way the request is remembered
 * for the audit record.
 */

static ngx_int_t
ngx_http_fhir_bulk_authorize_file(ngx_http_request_t *r,
    ngx_http_fhir_bulk_files_loc_conf_t *fcf, ngx_str_t *rel,
    fhirbulk_str_t *job, fhirbulk_str_t *file, ngx_uint_t *allowed)
{
    ngx_int_t                           rc;
    fhirbulk_str_t                      authorization, query;
    fhirbulk_response_t                 resp;
    ngx_http_fhir_bulk_download_ctx_t  *ctx;

    *allowed = 0;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_fhir_bulk_download_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->files = fcf->files;
    ctx->target = *rel;
    ngx_http_set_ctx(r, ctx, ngx_http_fhir_bulk_files_module);

    query.data = (const char *) r->args.data;
    query.len = r->args.len;

    authorization.data = NULL;
    authorization.len = 0;

    if (r->headers_in.authorization) {
        authorization.data =
                          (const char *) r->headers_in.authorization->value.data;
        authorization.len = r->headers_in.authorization->value.len;
    }

    ngx_memzero(&resp, sizeof(fhirbulk_response_t));

    if (fhirbulk_files_authorize(fcf->files, *job, *file, authorization, query,
                                 ctx->client, sizeof(ctx->client), &resp))
    {
        *allowed = 1;
        return NGX_OK;
    }

    rc = ngx_http_fhir_bulk_send(r, &resp);
    fhirbulk_response_free(&resp);

    return rc;
}


#if (NGX_HTTP_FHIR_BULK_OPENAT2)

/* -1 once openat2() turned out to be missing (kernels before 5.6) */
static ngx_int_t  ngx_http_fhir_bulk_have_openat2 = 1;


/*
 * The file `name` (relative to the export directory) opened with openat2()
 * beneath the directory, following no symbolic link on the way: one system
 * call where the walk with O_NOFOLLOW (ngx_open_cached_file) takes three
 * opens and two closes per download.  -1 with errno set; ENOSYS when the
 * kernel has no openat2() (the caller then walks the path).
 *
 * The directory is opened once per worker process.  It is checked again to
 * be the one the configured path names (device and inode) at most once a
 * second, and at once when `revalidate` is set and the open failed, so a
 * directory replaced while nginx runs is followed within a second.
 */

static ngx_fd_t
ngx_http_fhir_bulk_open_beneath(ngx_http_request_t *r,
    ngx_http_fhir_bulk_files_loc_conf_t *fcf, const char *name, int flags,
    ngx_uint_t revalidate)
{
    u_char           *dir;
    ngx_fd_t          fd;
    ngx_err_t         err;
    ngx_uint_t        tries, check;
    struct stat       named, held;
    struct open_how   how;

    if (ngx_http_fhir_bulk_have_openat2 < 0) {
        ngx_set_errno(NGX_ENOSYS);
        return NGX_INVALID_FILE;
    }

    dir = NULL;

    for (tries = 0; /* void */; tries++) {

        check = fcf->root_fd != NGX_INVALID_FILE
                && (tries > 0 || ngx_time() != fcf->root_checked);

        if ((check || fcf->root_fd == NGX_INVALID_FILE) && dir == NULL) {
            dir = ngx_pnalloc(r->pool, fcf->files_dir.len + 1);
            if (dir == NULL) {
                ngx_set_errno(NGX_ENOMEM);
                return NGX_INVALID_FILE;
            }

            (void) ngx_cpystrn(dir, fcf->files_dir.data,
                               fcf->files_dir.len + 1);
        }

        if (check) {
            if (stat((char *) dir, &named) == -1
                || fstat(fcf->root_fd, &held) == -1
                || named.st_dev != held.st_dev
                || named.st_ino != held.st_ino)
            {
                (void) close(fcf->root_fd);
                fcf->root_fd = NGX_INVALID_FILE;
            }

            fcf->root_checked = ngx_time();
        }

        if (fcf->root_fd == NGX_INVALID_FILE) {
            fcf->root_fd = open((char *) dir,
                                O_PATH|O_DIRECTORY|O_CLOEXEC);
            if (fcf->root_fd == NGX_INVALID_FILE) {
                return NGX_INVALID_FILE;
            }

            fcf->root_checked = ngx_time();
        }

        ngx_memzero(&how, sizeof(struct open_how));
        how.flags = flags;
        how.resolve = RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS
                      |RESOLVE_NO_MAGICLINKS;

        fd = (ngx_fd_t) syscall(SYS_openat2, fcf->root_fd, name, &how,
                                sizeof(struct open_how));
        if (fd != NGX_INVALID_FILE) {
            return fd;
        }

        err = ngx_errno;

        if (err == NGX_ENOSYS) {
            ngx_http_fhir_bulk_have_openat2 = -1;

            /* once per worker process: which path every download takes */

            ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                          "fhir_bulk: openat2() is not available (kernel "
                          "before 5.6?), export files are opened one path "
                          "component at a time");

            (void) close(fcf->root_fd);
            fcf->root_fd = NGX_INVALID_FILE;
            ngx_set_errno(NGX_ENOSYS);
            return NGX_INVALID_FILE;
        }

        if (tries > 0 || !revalidate
            || (err != NGX_ENOENT && err != NGX_ENOTDIR))
        {
            ngx_set_errno(err);
            return NGX_INVALID_FILE;
        }
    }
}

#endif


/*
 * NGX_OK, NGX_DECLINED when there is no such regular file, or an error.
 * `probe`: a file that may well be missing (the gzip twin), whose absence
 * does not make the held export directory suspect (the file itself will).
 * Symbolic links are never followed below the export directory: the job
 * directory and the file are opened with openat2() beneath it and no link
 * resolved, or else one component at a time with O_NOFOLLOW, so a link
 * planted there is "no such file", logged.
 */

static ngx_int_t
ngx_http_fhir_bulk_open_file(ngx_http_request_t *r,
    ngx_http_fhir_bulk_files_loc_conf_t *fcf, ngx_str_t *path,
    ngx_uint_t probe, ngx_open_file_info_t *of)
{
    ngx_http_core_loc_conf_t  *clcf;
#if (NGX_HTTP_FHIR_BULK_OPENAT2)
    ngx_fd_t                   fd;
    ngx_err_t                  err;
    ngx_file_info_t            fi;
    ngx_pool_cleanup_t        *cln;
    ngx_pool_cleanup_file_t   *clnf;
#endif

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    ngx_memzero(of, sizeof(ngx_open_file_info_t));

#if (NGX_HTTP_FHIR_BULK_OPENAT2)

    /* read-ahead, directio and the file cache: nginx's own open does them */

    if (clcf->open_file_cache == NULL
        && clcf->directio == NGX_OPEN_FILE_DIRECTIO_OFF
        && clcf->read_ahead == 0)
    {
        cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_pool_cleanup_file_t));
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        fd = ngx_http_fhir_bulk_open_beneath(r, fcf,
                 (char *) path->data + fcf->files_dir.len + 1,
                 O_RDONLY|O_NONBLOCK, !probe);

        if (fd != NGX_INVALID_FILE) {
            clnf = cln->data;
            clnf->fd = fd;
            clnf->name = path->data;
            clnf->log = r->connection->log;
            cln->handler = ngx_pool_cleanup_file;

            if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
                ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                              ngx_fd_info_n " \"%s\" failed", path->data);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            if (!ngx_is_file(&fi)) {
                return NGX_DECLINED;
            }

            of->fd = fd;
            of->uniq = ngx_file_uniq(&fi);
            of->mtime = ngx_file_mtime(&fi);
            of->size = ngx_file_size(&fi);
            of->fs_size = ngx_file_fs_size(&fi);
            of->is_file = 1;

            return NGX_OK;
        }

        err = ngx_errno;

        switch (err) {

        case NGX_ENOSYS:
            break;  /* no openat2(): the walk below */

        case NGX_ENOENT:
        case NGX_ENOTDIR:
        case NGX_ENAMETOOLONG:
            return NGX_DECLINED;

        case NGX_ELOOP:
        case NGX_EXDEV:
            ngx_log_error(NGX_LOG_ERR, r->connection->log, err,
                          "fhir_bulk: refused a symbolic link: \"%s\"",
                          path->data);
            return NGX_DECLINED;

        case NGX_EACCES:
            ngx_log_error(NGX_LOG_ERR, r->connection->log, err,
                          "fhir_bulk: open() \"%s\" failed (the export "
                          "directory must be readable by nginx's user through "
                          "a shared group)", path->data);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;

        default:
            ngx_log_error(NGX_LOG_CRIT, r->connection->log, err,
                          "open() \"%s\" failed", path->data);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

#endif

    of->read_ahead = clcf->read_ahead;
    of->directio = clcf->directio;
    of->valid = clcf->open_file_cache_valid;
    of->min_uses = clcf->open_file_cache_min_uses;
    of->errors = clcf->open_file_cache_errors;
    of->events = clcf->open_file_cache_events;

#if (NGX_HAVE_OPENAT)
    of->disable_symlinks = NGX_DISABLE_SYMLINKS_ON;
    of->disable_symlinks_from = fcf->files_dir.len;
#else
#error ngx_http_fhir_bulk_module needs openat() to refuse symbolic links
#endif

    if (ngx_open_cached_file(clcf->open_file_cache, path, of, r->pool)
        != NGX_OK)
    {
        switch (of->err) {

        case 0:
            return NGX_HTTP_INTERNAL_SERVER_ERROR;

        case NGX_ENOENT:
        case NGX_ENOTDIR:
        case NGX_ENAMETOOLONG:
            return NGX_DECLINED;

        case NGX_ELOOP:
#if (NGX_HAVE_OPENAT)
        case NGX_EMLINK:
#endif
            ngx_log_error(NGX_LOG_ERR, r->connection->log, of->err,
                          "fhir_bulk: refused a symbolic link: %s \"%s\"",
                          of->failed, path->data);
            return NGX_DECLINED;

        case NGX_EACCES:
            ngx_log_error(NGX_LOG_ERR, r->connection->log, of->err,
                          "fhir_bulk: %s \"%s\" failed (the export directory "
                          "must be readable by nginx's user through a shared "
                          "group)", of->failed, path->data);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;

        default:
            ngx_log_error(NGX_LOG_CRIT, r->connection->log, of->err,
                          "%s \"%s\" failed", of->failed, path->data);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (!of->is_file) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * NGX_OK when the job has a cancel marker, NGX_DECLINED when it has none,
 * or an error: a marker that cannot be looked up refuses the download (a
 * cancel must never be missed).
 */

static ngx_int_t
ngx_http_fhir_bulk_cancelled(ngx_http_request_t *r,
    ngx_http_fhir_bulk_files_loc_conf_t *fcf, fhirbulk_str_t *job)
{
    u_char           *p, *last;
    ngx_fd_t          fd;
    ngx_err_t         err;
    ngx_str_t        *dir;
    ngx_file_info_t   fi;

    dir = &fcf->files_dir;

    p = ngx_pnalloc(r->pool, dir->len + sizeof(NGX_HTTP_FHIR_BULK_CANCELS)
                             + job->len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = ngx_cpymem(p, dir->data, dir->len);
    last = ngx_cpymem(last, NGX_HTTP_FHIR_BULK_CANCELS,
                      sizeof(NGX_HTTP_FHIR_BULK_CANCELS) - 1);

    /*
     * ".cancels" itself must be a real directory: markers written through a
     * planted link would be elsewhere, so a link refuses every download of
     * the export directory (no cancel is missed); none at all means that no
     * cancel was ever recorded.
     */

#if (NGX_HTTP_FHIR_BULK_OPENAT2)

    /*
     * One openat2() of ".cancels/<job>" beneath the export directory,
     * resolving no link: ".cancels" must be a real directory (ELOOP
     * otherwise), and a marker that is itself a link still counts (O_PATH
     * with O_NOFOLLOW opens the link).  No revalidation of the directory on
     * ENOENT: that is every download's answer (the directory is checked
     * once a second, and by the file's open just before).
     */

    last = ngx_cpymem(last, job->data, job->len);
    *last = '\0';

    fd = ngx_http_fhir_bulk_open_beneath(r, fcf, (char *) p + dir->len + 1,
                                         O_PATH|O_NOFOLLOW|O_CLOEXEC, 0);
    if (fd != NGX_INVALID_FILE) {
        (void) close(fd);
        return NGX_OK;
    }

    err = ngx_errno;

    if (err == NGX_ENOENT) {
        return NGX_DECLINED;
    }

    if (err != NGX_ENOSYS) {
        goto failed;
    }

    last -= job->len;

#endif

    last[-1] = '\0';

    if (ngx_link_info(p, &fi) == -1) {
        err = ngx_errno;

        if (err == NGX_ENOENT) {
            return NGX_DECLINED;
        }

        goto failed;
    }

    if (!ngx_is_dir(&fi)) {
        err = NGX_ENOTDIR;
        goto failed;
    }

    last[-1] = '/';
    last = ngx_cpymem(last, job->data, job->len);
    *last = '\0';

    if (ngx_link_info(p, &fi) == 0) {
        return NGX_OK;
    }

    err = ngx_errno;

    if (err == NGX_ENOENT) {
        return NGX_DECLINED;
    }

failed:

    ngx_log_error(NGX_LOG_ERR, r->connection->log, err,
                  "fhir_bulk: cannot look up the cancel marker \"%s\", "
                  "download refused", p);

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/*
 * Signed file URLs are capabilities: in a files location the request line,
 * which nginx writes into the access log ($request) and into every error
 * log line about the request ("request: ..."), gets the value of each
 * "signature" query parameter replaced by "***".  A parameter whose name is
 * percent-encoded is masked too.  $request_uri and $args keep the original.
 */

static ngx_int_t
ngx_http_fhir_bulk_mask_handler(ngx_http_request_t *r)
{
    u_char                               *p, *end, *q, *name, *value, *out, *o;
    size_t                                n;
    ngx_uint_t                            masked;
    ngx_http_fhir_bulk_files_loc_conf_t  *fcf;

    fcf = ngx_http_get_module_loc_conf(r, ngx_http_fhir_bulk_files_module);

    if (fcf->files_dir.len == 0 || r->request_line.len == 0) {
        return NGX_DECLINED;
    }

    p = r->request_line.data;
    end = p + r->request_line.len;

    q = ngx_strlchr(p, end, '?');
    if (q == NULL) {
        return NGX_DECLINED;
    }

    /* the request line ends with " HTTP/x.y" unless it is HTTP/0.9 */

    for (n = r->request_line.len; n > (size_t) (q - p); n--) {
        if (p[n - 1] == ' ') {
            end = p + n - 1;
            break;
        }
    }

    /* "=" becomes "=***": at most 2.5 times "%=" */
    out = ngx_pnalloc(r->pool, r->request_line.len * 3);
    if (out == NULL) {
        return NGX_ERROR;
    }

    o = ngx_cpymem(out, p, q + 1 - p);
    masked = 0;
    name = q + 1;

    while (name < end) {
        value = name;
        while (value < end && *value != '&' && *value != '=') {
            value++;
        }

        o = ngx_cpymem(o, name, value - name);

        if (value < end && *value == '=') {
            q = value + 1;
            while (q < end && *q != '&') {
                q++;
            }

            if (((size_t) (value - name) == sizeof("signature") - 1
                 && ngx_strncasecmp(name, (u_char *) "signature",
                                    sizeof("signature") - 1) == 0)
                || ngx_strlchr(name, value, '%') != NULL)
            {
                o = ngx_cpymem(o, "=***", 4);
                masked = 1;

            } else {
                o = ngx_cpymem(o, value, q - value);
            }

            value = q;
        }

        if (value < end) {
            *o++ = '&';   /* the '&' */
        }

        name = value + 1;
    }

    if (!masked) {
        return NGX_DECLINED;
    }

    o = ngx_cpymem(o, end, r->request_line.data + r->request_line.len - end);

    r->request_line.data = out;
    r->request_line.len = o - out;

    return NGX_DECLINED;
}


static void *
ngx_http_fhir_bulk_files_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_fhir_bulk_files_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_fhir_bulk_files_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->files_dir = { 0, NULL };
     *     conf->files = NULL;
     *     conf->root_checked = 0;
     */

    conf->root_fd = NGX_INVALID_FILE;

    return conf;
}


/*
 * Nothing is inherited: "fhir_bulk_files" sets the content handler of its
 * own location only.  The API module's merge of the same location has run
 * (it comes first in the module list), so the values read from it are final.
 */

static char *
ngx_http_fhir_bulk_files_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_fhir_bulk_files_loc_conf_t *conf = child;

    ngx_http_fhir_bulk_loc_conf_t  *alcf;

    if (conf->files_dir.len == 0) {
        return NGX_CONF_OK;
    }

    alcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_fhir_bulk_module);

    if (alcf->auth == NGX_CONF_UNSET
        || alcf->token_lifetime == NGX_CONF_UNSET)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fhir_bulk_files: ngx_http_fhir_bulk_module must "
                           "precede ngx_http_fhir_bulk_files_module");
        return NGX_CONF_ERROR;
    }

    return ngx_http_fhir_bulk_create_files(cf, conf, alcf);
}


static char *
ngx_http_fhir_bulk_files(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_fhir_bulk_files_loc_conf_t *fcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (fcf->files_dir.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    fcf->files_dir = value[1];

    while (fcf->files_dir.len > 1
           && fcf->files_dir.data[fcf->files_dir.len - 1] == '/')
    {
        fcf->files_dir.len--;
    }

    if (ngx_conf_full_name(cf->cycle, &fcf->files_dir, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->name.len == 0 || clcf->name.data[clcf->name.len - 1] != '/'
        || clcf->regex
#if (NGX_PCRE)
        || clcf->named
#endif
       )
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_bulk_files\" needs a prefix location "
                           "ending with \"/\"");
        return NGX_CONF_ERROR;
    }

    clcf->handler = ngx_http_fhir_bulk_files_handler;

    return NGX_CONF_OK;
}


/*
 * A files location gets its own authorizer: it may live in another server
 * block, or on an edge nginx with only the URL key and no database.
 */

static char *
ngx_http_fhir_bulk_create_files(ngx_conf_t *cf,
    ngx_http_fhir_bulk_files_loc_conf_t *fcf,
    ngx_http_fhir_bulk_loc_conf_t *conf)
{
    char                       err[512];
    ngx_pool_cleanup_t        *cln;
    fhirbulk_files_options_t   opts;

    if (conf->conninfo.len == 0 && conf->conninfo_file.len
        && ngx_http_fhir_bulk_read_conninfo_file(cf, conf) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_fhir_bulk_full_name(cf, &conf->token_key_file) != NGX_OK
        || ngx_http_fhir_bulk_full_name(cf, &conf->signed_url_key_file)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&opts, sizeof(fhirbulk_files_options_t));
    opts.auth_enabled = (int) conf->auth;
    opts.token_key_file.data = (const char *) conf->token_key_file.data;
    opts.token_key_file.len = conf->token_key_file.len;
    opts.signed_url_key_file.data =
                                (const char *) conf->signed_url_key_file.data;
    opts.signed_url_key_file.len = conf->signed_url_key_file.len;
    opts.export_dir.data = (const char *) fcf->files_dir.data;
    opts.export_dir.len = fcf->files_dir.len;
    opts.conninfo.data = (const char *) conf->conninfo.data;
    opts.conninfo.len = conf->conninfo.len;
    opts.token_lifetime = (int) conf->token_lifetime;

    err[0] = '\0';
    fcf->files = fhirbulk_files_create(&opts, err, sizeof(err));

    if (fcf->files == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fhir_bulk_files: invalid configuration: %s", err);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        fhirbulk_files_destroy(fcf->files);
        fcf->files = NULL;
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_fhir_bulk_cleanup_files;
    cln->data = fcf->files;

    return NGX_CONF_OK;
}


static void
ngx_http_fhir_bulk_cleanup_files(void *data)
{
    fhirbulk_files_destroy(data);
}


static ngx_int_t
ngx_http_fhir_bulk_files_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_fhir_bulk_log_handler;

    /* before limit_req, limit_conn and access log anything about it */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_fhir_bulk_mask_handler;

    return NGX_OK;
}


/*
 * every request of a files location is counted (metrics); every download
 * that reached authorization goes to the audit trail
 */

static ngx_int_t
ngx_http_fhir_bulk_log_handler(ngx_http_request_t *r)
{
    fhirbulk_str_t                        target, addr;
    ngx_http_fhir_bulk_download_ctx_t    *ctx;
    ngx_http_fhir_bulk_files_loc_conf_t  *fcf;

    fcf = ngx_http_get_module_loc_conf(r, ngx_http_fhir_bulk_files_module);

    if (fcf->files_dir.len) {
        ngx_http_fhir_bulk_count_download(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_fhir_bulk_files_module);

    if (ctx == NULL || ctx->files == NULL) {
        return NGX_OK;
    }

    target.data = (const char *) ctx->target.data;
    target.len = ctx->target.len;
    addr.data = (const char *) r->connection->addr_text.data;
    addr.len = r->connection->addr_text.len;

    fhirbulk_files_audit(ctx->files, ctx->client, target,
                         (int) r->headers_out.status, addr);

    return NGX_OK;
}
