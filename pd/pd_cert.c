#include "pd_cert.h"

#include <mbedtls/x509_crt.h>
#include <stdio.h>

#include "x509util.h"

int pd_cert_file_cn(const char *path, char *cn, size_t cnlen, char *err, size_t errlen)
{
    mbedtls_x509_crt crt;
    char why[200];
    mbedtls_x509_crt_init(&crt);
    int ret = mbedtls_x509_crt_parse_file(&crt, path);
    if (ret < 0) /* ret > 0: some later certificates of a chain failed; the first is fine */
        snprintf(err, errlen, "cert-path %s: %s", path, tls_strerror(ret, why, sizeof why));
    else
        x509_subject_cn(&crt, cn, cnlen);
    mbedtls_x509_crt_free(&crt);
    return ret < 0 ? -1 : 0;
}
