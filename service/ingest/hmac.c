/* hmac.c - the few primitives webhook verification and OAuth need, all on OpenSSL libcrypto. */
#include "hmac.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "util.h"

void hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                 unsigned char out[HMAC_SHA256_LEN])
{
    unsigned int len = HMAC_SHA256_LEN;
    HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, out, &len);
}

void hmac_sha256_digest(const void *msg, size_t msg_len, unsigned char out[HMAC_SHA256_LEN])
{
    SHA256(msg, msg_len, out);
}

char *hmac_base64(const unsigned char *data, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

char *hmac_base64url(const unsigned char *data, size_t len)
{
    char *s = hmac_base64(data, len);
    size_t n = strlen(s);
    while (n && s[n - 1] == '=')
        s[--n] = '\0';
    for (char *p = s; *p; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
    }
    return s;
}

bool hmac_base64_decode(const char *s, unsigned char **out, size_t *out_len)
{
    size_t n = strlen(s);
    /* Normalise to standard alphabet with padding, as EVP_DecodeBlock wants. */
    char *norm = xmalloc(n + 4);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        norm[m++] = c;
    }
    while (m % 4)
        norm[m++] = '=';
    norm[m] = '\0';
    unsigned char *buf = xmalloc(m / 4 * 3 + 1);
    int got = EVP_DecodeBlock(buf, (unsigned char *)norm, (int)m);
    if (got < 0) {
        free(norm);
        free(buf);
        return false;
    }
    /* EVP_DecodeBlock counts padding as zero bytes; drop them. */
    size_t pad = 0;
    while (pad < 2 && m > pad && norm[m - 1 - pad] == '=')
        pad++;
    free(norm);
    *out = buf;
    *out_len = (size_t)got - pad;
    return true;
}

char *hmac_hex(const unsigned char *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *out = xmalloc(len * 2 + 1);
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[len * 2] = '\0';
    return out;
}

bool hmac_equal(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    if (la != lb)
        return false;
    return CRYPTO_memcmp(a, b, la) == 0;
}

char *hmac_random_token(size_t bytes)
{
    unsigned char raw[64];
    if (bytes == 0 || bytes > sizeof(raw) || RAND_bytes(raw, (int)bytes) != 1)
        return NULL;
    char *token = hmac_base64url(raw, bytes);
    OPENSSL_cleanse(raw, sizeof(raw));
    return token;
}
