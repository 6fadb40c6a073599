/* sf_id.c - Salesforce id checksums: each 5-character chunk of the 15-character id contributes
 * one suffix character, whose value is the bitmap of the chunk's uppercase letters. */
#include "sf_id.h"

#include <string.h>

static bool is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static void suffix(const char *id15, char out[3])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    for (int chunk = 0; chunk < 3; chunk++) {
        int bits = 0;
        for (int i = 0; i < 5; i++) {
            char c = id15[chunk * 5 + i];
            if (c >= 'A' && c <= 'Z')
                bits |= 1 << i;
        }
        out[chunk] = alphabet[bits];
    }
}

bool sf_id_is_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n != 15 && n != 18)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]))
            return false;
    if (n == 18) {
        char want[3];
        suffix(s, want);
        /* Salesforce compares the suffix case-insensitively (it is derived, not data). */
        for (int i = 0; i < 3; i++) {
            char got = s[15 + i];
            if (got >= 'a' && got <= 'z')
                got = (char)(got - 'a' + 'A');
            if (got != want[i])
                return false;
        }
    }
    return true;
}

bool sf_id_to18(const char *s, char out[19])
{
    if (!sf_id_is_valid(s))
        return false;
    memcpy(out, s, 15);
    suffix(s, out + 15);
    out[18] = '\0';
    return true;
}

bool sf_id_equal(const char *a, const char *b)
{
    if (!sf_id_is_valid(a) || !sf_id_is_valid(b))
        return false;
    return strncmp(a, b, 15) == 0;
}
