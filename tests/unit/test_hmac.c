/* test_hmac.c - HMAC-SHA256 against RFC 4231, base64/hex round trips, constant-time equality. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmac.h"

struct rfc4231_case {
    const char *key_hex;
    const char *data;
    const char *mac_hex;
};

static unsigned char *from_hex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    unsigned char *out = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned int v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
    *len = n;
    return out;
}

/* RFC 4231 test cases 1, 2 and 6 (HMAC-SHA-256 column). */
static const struct rfc4231_case rfc4231[] = {
    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {"4a656665", "what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
};

START_TEST(rfc4231_vectors)
{
    const struct rfc4231_case *c = &rfc4231[_i];
    size_t key_len;
    unsigned char *key = from_hex(c->key_hex, &key_len);
    unsigned char mac[HMAC_SHA256_LEN];
    hmac_sha256(key, key_len, c->data, strlen(c->data), mac);
    char *hex = hmac_hex(mac, sizeof(mac));
    ck_assert_str_eq(hex, c->mac_hex);
    free(hex);
    free(key);
}
END_TEST

START_TEST(base64_round_trip)
{
    const unsigned char data[] = {0xfb, 0xff, 0x00, 0x41, 0x42};
    char *b64 = hmac_base64(data, sizeof(data));
    ck_assert_str_eq(b64, "+/8AQUI=");
    char *url = hmac_base64url(data, sizeof(data));
    ck_assert_str_eq(url, "-_8AQUI");
    unsigned char *back = NULL;
    size_t n = 0;
    ck_assert(hmac_base64_decode(url, &back, &n));
    ck_assert_uint_eq(n, sizeof(data));
    ck_assert_mem_eq(back, data, n);
    free(back);
    ck_assert(hmac_base64_decode(b64, &back, &n));
    ck_assert_uint_eq(n, sizeof(data));
    free(back);
    ck_assert(!hmac_base64_decode("!!!!", &back, &n));
    free(url);
    free(b64);
}
END_TEST

START_TEST(equality_is_exact)
{
    ck_assert(hmac_equal("abc", "abc"));
    ck_assert(!hmac_equal("abc", "abd"));
    ck_assert(!hmac_equal("abc", "abcd"));
    ck_assert(hmac_equal("", ""));
}
END_TEST

Suite *suite_hmac(void);
Suite *suite_hmac(void)
{
    Suite *s = suite_create("hmac");
    TCase *tc = tcase_create("primitives");
    tcase_add_loop_test(tc, rfc4231_vectors, 0, sizeof(rfc4231) / sizeof(rfc4231[0]));
    tcase_add_test(tc, base64_round_trip);
    tcase_add_test(tc, equality_is_exact);
    suite_add_tcase(s, tc);
    return s;
}
