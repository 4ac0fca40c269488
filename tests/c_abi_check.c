/* Compiled as C99 with -pedantic -Werror: the C ABI header must stay C-clean. */
#include "fhirbulk/fhirbulk.h"

int fhirbulk_c_abi_check(void);

int
fhirbulk_c_abi_check(void)
{
    fhirbulk_response_t  resp;

    resp.status = 0;
    resp.nheaders = 0;
    return resp.status + resp.nheaders + (int) sizeof(fhirbulk_request_t);
}
