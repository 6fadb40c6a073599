/* json_strict.c - a recursive-descent checker of RFC 8259 with the stricter rules of
 * json_strict.h, and the exact-integer pass over cJSON's tree. */
#include "json_strict.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct scan {
    const char *start;
    const char *p;
    const char *end;
    struct json_numbers *nums;
    char *why;
    int depth;
};

static bool fail(struct scan *s, const char *what)
{
    if (!s->why)
        s->why = xasprintf("invalid JSON at byte %zu: %s", (size_t)(s->p - s->start), what);
    return false;
}

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool read_hex4(struct scan *s, unsigned *out)
{
    if (s->end - s->p < 4)
        return fail(s, "short \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(s->p[i]);
        if (d < 0)
            return fail(s, "bad \\u escape");
        v = v * 16 + (unsigned)d;
    }
    s->p += 4;
    *out = v;
    return true;
}

static void put_utf8(struct buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_append(b, u, n);
}

/* A string at s->p (the opening quote); its decoded bytes go to out when not NULL. */
static bool scan_string(struct scan *s, struct buf *out)
{
    s->p++;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20)
            return fail(s, "control character in a string");
        if (c != '\\') {
            if (out)
                buf_append(out, s->p, 1);
            s->p++;
            continue;
        }
        if (++s->p >= s->end)
            break;
        char e = *s->p++;
        static const char from[] = "\"\\/bfnrt";
        static const char to[] = "\"\\/\b\f\n\r\t";
        const char *k = e ? strchr(from, e) : NULL;
        if (k) {
            if (out)
                buf_append(out, &to[k - from], 1);
            continue;
        }
        if (e != 'u')
            return fail(s, "bad escape");
        unsigned cp;
        if (!read_hex4(s, &cp))
            return false;
        if (cp == 0)
            return fail(s, "\\u0000 in a string");
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return fail(s, "unpaired surrogate escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo;
            if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
                return fail(s, "unpaired surrogate escape");
            s->p += 2;
            if (!read_hex4(s, &lo))
                return false;
            if (lo < 0xDC00 || lo > 0xDFFF)
                return fail(s, "unpaired surrogate escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (out)
            put_utf8(out, cp);
    }
    return fail(s, "unterminated string");
}

static bool is_digit(const struct scan *s)
{
    return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

static bool scan_number(struct scan *s)
{
    const char *begin = s->p;
    if (*s->p == '-')
        s->p++;
    if (!is_digit(s))
        return fail(s, "bad number");
    if (*s->p == '0')
        s->p++;
    else
        while (is_digit(s))
            s->p++;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!is_digit(s))
            return fail(s, "bad number");
        while (is_digit(s))
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!is_digit(s))
            return fail(s, "bad number");
        while (is_digit(s))
            s->p++;
    }
    struct json_numbers *n = s->nums;
    if (n) {
        if (n->count == n->cap) {
            n->cap = n->cap ? n->cap * 2 : 64;
            n->spans = xrealloc(n->spans, n->cap * sizeof(*n->spans));
        }
        n->spans[n->count++] = (struct json_span){begin, (size_t)(s->p - begin)};
    }
    return true;
}

static bool scan_value(struct scan *s);

/* A key as decoded: a span of the text when it has no escape (no copy), else its own bytes. */
struct key {
    const char *data;
    size_t len;
    char *owned;
};

static int cmp_keys(const void *pa, const void *pb)
{
    const struct key *a = pa, *b = pb;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->data, b->data, n);
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* The key at s->p (its opening quote), checked and decoded into *k. */
static bool scan_key(struct scan *s, struct key *k)
{
    const char *begin = s->p;
    if (!scan_string(s, NULL))
        return false;
    const char *raw = begin + 1;
    size_t raw_len = (size_t)(s->p - 1 - raw);
    if (!memchr(raw, '\\', raw_len)) {
        *k = (struct key){raw, raw_len, NULL};
        return true;
    }
    /* Escapes: decoded again into its own bytes (a checked string cannot fail). */
    struct buf b;
    buf_init(&b, 0);
    s->p = begin;
    (void)scan_string(s, &b);
    char *owned = b.data ? b.data : xstrdup("");
    *k = (struct key){owned, b.len, owned};
    return true;
}

/* Keys of an object up to this many are kept on the stack (HubSpot's events have about 12). */
#define KEYS_ON_STACK 16

static bool scan_object(struct scan *s)
{
    s->p++;
    struct key stack_keys[KEYS_ON_STACK];
    struct key *keys = stack_keys;
    size_t count = 0, cap = KEYS_ON_STACK;
    bool ok = false;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return true;
    }
    for (;;) {
        skip_ws(s);
        if (s->p >= s->end || *s->p != '"') {
            fail(s, "expected a key");
            goto out;
        }
        if (count == cap) {
            cap *= 2;
            if (keys == stack_keys) {
                keys = xmalloc(cap * sizeof(*keys));
                memcpy(keys, stack_keys, sizeof(stack_keys));
            } else {
                keys = xrealloc(keys, cap * sizeof(*keys));
            }
        }
        if (!scan_key(s, &keys[count]))
            goto out;
        count++;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':') {
            fail(s, "expected ':'");
            goto out;
        }
        s->p++;
        if (!scan_value(s))
            goto out;
        skip_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            break;
        }
        fail(s, "expected ',' or '}'");
        goto out;
    }
    qsort(keys, count, sizeof(*keys), cmp_keys);
    ok = true;
    for (size_t i = 1; i < count && ok; i++)
        if (cmp_keys(&keys[i - 1], &keys[i]) == 0)
            ok = fail(s, "the same key twice in an object");
out:
    for (size_t i = 0; i < count; i++)
        free(keys[i].owned);
    if (keys != stack_keys)
        free(keys);
    return ok;
}

static bool scan_array(struct scan *s)
{
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return true;
    }
    for (;;) {
        if (!scan_value(s))
            return false;
        skip_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            return true;
        }
        return fail(s, "expected ',' or ']'");
    }
}

static bool scan_word(struct scan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return fail(s, "unexpected character");
    s->p += n;
    return true;
}

static bool scan_value(struct scan *s)
{
    skip_ws(s);
    if (s->p >= s->end)
        return fail(s, "unexpected end");
    bool ok;
    switch (*s->p) {
    case '{':
    case '[':
        if (++s->depth > JSON_STRICT_MAX_DEPTH)
            return fail(s, "nested too deep");
        ok = *s->p == '{' ? scan_object(s) : scan_array(s);
        s->depth--;
        return ok;
    case '"':
        return scan_string(s, NULL);
    case 't':
        return scan_word(s, "true");
    case 'f':
        return scan_word(s, "false");
    case 'n':
        return scan_word(s, "null");
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
            return scan_number(s);
        return fail(s, "unexpected character");
    }
}

bool json_strict_check(const char *text, size_t len, struct json_numbers *nums, char **why)
{
    struct scan s = {text, text, text + len, nums, NULL, 0};
    *why = NULL;
    bool ok = scan_value(&s);
    if (ok) {
        skip_ws(&s);
        if (s.p != s.end)
            ok = fail(&s, "bytes after the value");
    }
    if (!ok) {
        *why = s.why;
        if (nums)
            json_numbers_clear(nums);
    }
    return ok;
}

void json_numbers_clear(struct json_numbers *nums)
{
    if (!nums)
        return;
    free(nums->spans);
    memset(nums, 0, sizeof(*nums));
}

static bool is_plain_integer(struct json_span t)
{
    size_t i = t.len && t.p[0] == '-';
    size_t digits = 0;
    for (; i < t.len && t.p[i] >= '0' && t.p[i] <= '9'; i++)
        digits++;
    return digits > 0 && digits <= 40 && i == t.len;
}

static void exact_walk(cJSON *item, const struct json_numbers *nums, size_t *next)
{
    for (; item; item = item->next) {
        if (cJSON_IsNumber(item)) {
            if (*next >= nums->count)
                return;
            struct json_span t = nums->spans[(*next)++];
            if (is_plain_integer(t)) {
                char *copy = cJSON_malloc(t.len + 1);
                memcpy(copy, t.p, t.len);
                copy[t.len] = '\0';
                item->type = cJSON_Raw;
                item->valuestring = copy;
            }
        } else if (item->child) {
            exact_walk(item->child, nums, next);
        }
    }
}

void json_exact_integers(cJSON *tree, const struct json_numbers *nums)
{
    size_t next = 0;
    if (tree)
        exact_walk(tree, nums, &next);
}

bool json_is_utf8(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

bool json_tree_is_utf8(const cJSON *item)
{
    for (; item; item = item->next) {
        if (item->string && !json_is_utf8(item->string, strlen(item->string)))
            return false;
        if (cJSON_IsString(item) && !json_is_utf8(item->valuestring, strlen(item->valuestring)))
            return false;
        if (item->child && !json_tree_is_utf8(item->child))
            return false;
    }
    return true;
}
