/* b64.c - base64 through nettle (see b64.h). */
#include "common/b64.h"

#include <nettle/base64.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

char *
b64_encode(const void *src, size_t len)
{
	struct base64_encode_ctx ctx;
	char *out = xmalloc(BASE64_ENCODE_LENGTH(len) + BASE64_ENCODE_FINAL_LENGTH + 1);
	size_t n;

	base64_encode_init(&ctx);
	n = base64_encode_update(&ctx, out, len, src);
	n += base64_encode_final(&ctx, out + n);
	out[n] = '\0';
	return out;
}

int
b64_decode(const char *src, void **ret, size_t *ret_len)
{
	struct base64_decode_ctx ctx;
	size_t slen = strlen(src), n = BASE64_DECODE_LENGTH(slen);
	uint8_t *out = xmalloc(n + 1);

	base64_decode_init(&ctx);
	if (!base64_decode_update(&ctx, &n, out, slen, src) ||
	    !base64_decode_final(&ctx)) {
		free(out);
		return -1;
	}
	*ret = out;
	*ret_len = n;
	return 0;
}
