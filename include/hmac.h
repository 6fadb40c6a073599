/* hmac.h - HMAC-SHA256, SHA-256, base64, hex and constant-time comparison on OpenSSL. Pure,
 * thread-safe. */
#ifndef SVC_HMAC_H
#define SVC_HMAC_H

#include <stdbool.h>
#include <stddef.h>

#define HMAC_SHA256_LEN 32

/* out receives 32 bytes. */
void hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                 unsigned char out[HMAC_SHA256_LEN]);
void hmac_sha256_digest(const void *msg, size_t msg_len, unsigned char out[HMAC_SHA256_LEN]);

/* Standard base64 with padding; caller frees. */
char *hmac_base64(const unsigned char *data, size_t len);
/* Decodes standard or URL-safe base64 (padding optional); caller frees *out. False on junk. */
bool hmac_base64_decode(const char *s, unsigned char **out, size_t *out_len);
/* base64url without padding (JWT); caller frees. */
char *hmac_base64url(const unsigned char *data, size_t len);
/* Lowercase hex; caller frees. */
char *hmac_hex(const unsigned char *data, size_t len);
/* bytes (1..64) from the system's CSPRNG as base64url without padding (safe in a URL query
 * unescaped); NULL when no randomness is available. Caller frees. */
char *hmac_random_token(size_t bytes);

/* True when a and b are equal; time depends only on the lengths (CRYPTO_memcmp). */
bool hmac_equal(const char *a, const char *b);

#endif
