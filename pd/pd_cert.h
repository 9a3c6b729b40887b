/* pd_cert.h — the Common Name of this member's own certificate, so that peer RPCs can be
 * limited to PD members (members dial each other with their server certificate).
 *
 * Contract:
 * - pd_cert_file_cn reads the first certificate of a PEM file and writes its subject CN
 *   (printable ASCII, '?' for other bytes; "" when it has none). -1 with err naming the file
 *   and the cause when the file cannot be read or parsed.
 * - The only pd/ file that touches mbedTLS; it would sit better in common/x509util.
 */
#ifndef TISIM_PD_CERT_H
#define TISIM_PD_CERT_H

#include <stddef.h>

int pd_cert_file_cn(const char *path, char *cn, size_t cnlen, char *err, size_t errlen);

#endif
