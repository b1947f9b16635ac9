/* b64.h - base64 (RFC 4648, with padding) by nettle, for the bytes the
 * API carries in JSON strings (exec's stdin and output). */
#ifndef BANGER_COMMON_B64_H
#define BANGER_COMMON_B64_H

#include <stddef.h>

/* A NUL-terminated encoding of len bytes of src (malloc'd). */
char *b64_encode(const void *src, size_t len);
/* 0 and *ret (malloc'd, *ret_len bytes) for valid base64, else -1. */
int b64_decode(const char *src, void **ret, size_t *ret_len);

#endif
