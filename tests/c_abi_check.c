/* Compiled as C99 with -pedantic -Werror: the C ABI headers must stay C-clean. */
#include "fhirbulk/defaults.h"
#include "fhirbulk/fhirbulk.h"

int fhirbulk_c_abi_check(void);

int
fhirbulk_c_abi_check(void)
{
    fhirbulk_response_t   resp;
    fhirbulk_pending_t   *pending;
    fhirbulk_str_t        job, file;
    long long             bytes;

    resp.status = 0;
    resp.nheaders = 0;
    pending = NULL;
    job.len = 0;
    file.len = 0;
    bytes = FHIRBULK_DEFAULT_MAX_RETAINED_BYTES + FHIRBULK_DEFAULT_MIN_FREE_BYTES;

    /* the two halves and the file-name grammar, as the module calls them */
    (void) fhirbulk_handle_fast;
    (void) fhirbulk_pending_run;
    (void) fhirbulk_pending_free;
    (void) fhirbulk_files_split_path;
    /* metrics: the tag, the counters' layout, the renderer */
    (void) fhirbulk_metrics_render;
    (void) fhirbulk_metric_code_index;
    resp.metric.route = FHIRBULK_METRIC_OTHER;
    resp.metric.token = FHIRBULK_TOKEN_NONE;

    return resp.status + resp.nheaders + (int) sizeof(fhirbulk_request_t)
           + (pending == NULL) + (int) (job.len + file.len) + (bytes > 0)
           + FHIRBULK_DEFAULT_AUTH + (int) sizeof(FHIRBULK_DEFAULT_THREAD_POOL)
           + (int) sizeof(fhirbulk_counters_t) + (int) resp.metric.route
           + FHIRBULK_WORKER_LIVE_SECONDS;
}
