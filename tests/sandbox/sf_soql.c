/* sf_soql.c - the SOQL subset dealsync uses, parsed and evaluated over the store: field lists
 * with parent paths, WHERE (= != <> < > <= >= IN, NOT IN, LIKE, AND, OR, NOT, parentheses, null,
 * string/number/boolean/date/datetime literals), ORDER BY, LIMIT, OFFSET. Anything else is a
 * MALFORMED_QUERY: the sandbox never answers a query it does not understand. */
#include "sf_api.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"
#include "vindex.h"

enum tok_kind { T_END, T_IDENT, T_STRING, T_NUMBER, T_DATE, T_DATETIME, T_PUNCT };

struct tok {
    enum tok_kind kind;
    char *text; /* identifier/punctuation/number text, string contents unescaped */
    double num;
    int64_t ms;
};

enum val_kind { V_NULL, V_STRING, V_NUMBER, V_BOOL, V_DATE, V_DATETIME };

struct val {
    enum val_kind kind;
    char *str;
    double num;
    bool b;
    int64_t ms;
};

/* A field reference: relationship hops from the FROM object, then the field. */
struct fref {
    char *path;                      /* canonical "Account.Owner.Email" */
    const struct sf_field *hops[4];  /* reference fields followed */
    const struct sf_object *objs[5]; /* objs[0] = FROM, objs[i+1] = target of hops[i] */
    size_t depth;
    const struct sf_field *field;
};

enum cond_kind { C_AND, C_OR, C_NOT, C_CMP, C_IN, C_NOT_IN, C_LIKE };
enum cmp_op { OP_EQ, OP_NE, OP_LT, OP_GT, OP_LE, OP_GE };

struct cond {
    enum cond_kind kind;
    struct cond *a, *b;
    struct fref f;
    enum cmp_op op;
    struct val *vals;
    size_t nvals;
};

struct order_item {
    struct fref f;
    bool is_desc;
    bool nulls_first;
};

struct parser {
    struct tok *toks;
    size_t ntoks;
    size_t pos;
    const struct sf_object *from;
    struct sf_error *err;
    bool failed;
};

/* ---- lexer ------------------------------------------------------------------------------- */

static void fail(struct parser *p, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct parser *p, const char *code, const char *fmt, ...)
{
    va_list ap;
    if (p->failed)
        return;
    p->failed = true;
    sf_error_set(p->err, 400, code, NULL, "%s", "");
    va_start(ap, fmt);
    vsnprintf(p->err->message, sizeof(p->err->message), fmt, ap);
    va_end(ap);
}

static void push(struct tok **toks, size_t *n, size_t *cap, struct tok t)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 32;
        *toks = xrealloc(*toks, *cap * sizeof(**toks));
    }
    (*toks)[(*n)++] = t;
}

static bool lex(const char *q, struct parser *p)
{
    size_t cap = 0;
    const char *s = q;
    while (*s) {
        struct tok t = {T_END, NULL, 0, 0};
        if (isspace((unsigned char)*s)) {
            s++;
            continue;
        }
        if (isalpha((unsigned char)*s) || *s == '_') {
            const char *b = s;
            while (isalnum((unsigned char)*s) || *s == '_' || *s == '.')
                s++;
            t.kind = T_IDENT;
            t.text = xstrndup(b, (size_t)(s - b));
            /* Date literals such as TODAY or LAST_N_DAYS:7 are not in the subset. */
            if (*s == ':') {
                fail(p, "MALFORMED_QUERY", "date literal %s is not supported by the sandbox",
                     t.text);
                free(t.text);
                return false;
            }
        } else if (*s == '\'') {
            struct buf b;
            buf_init(&b, 0);
            buf_append_str(&b, "");
            s++;
            while (*s && *s != '\'') {
                if (*s == '\\') {
                    s++;
                    char c = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s == 'r' ? '\r' : *s;
                    if (!strchr("ntr'\"\\_%", *s) || !*s) {
                        buf_clear(&b);
                        fail(p, "MALFORMED_QUERY", "Invalid string literal escape");
                        return false;
                    }
                    /* \_ and \% stay escaped for LIKE; elsewhere they are literal. */
                    if (*s == '_' || *s == '%')
                        buf_append(&b, "\\", 1);
                    buf_append(&b, &c, 1);
                    s++;
                    continue;
                }
                buf_append(&b, s, 1);
                s++;
            }
            if (*s != '\'') {
                buf_clear(&b);
                fail(p, "MALFORMED_QUERY", "unterminated string literal");
                return false;
            }
            s++;
            t.kind = T_STRING;
            t.text = buf_steal(&b);
        } else if (isdigit((unsigned char)*s) ||
                   ((*s == '-' || *s == '+') && isdigit((unsigned char)s[1]))) {
            const char *b = s;
            bool is_date = isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
                           isdigit((unsigned char)s[2]) && isdigit((unsigned char)s[3]) &&
                           s[4] == '-';
            if (is_date) {
                while (isdigit((unsigned char)*s) || strchr("-:.+TZ", *s))
                    s++;
                t.text = xstrndup(b, (size_t)(s - b));
                if (sf_date_valid(t.text)) {
                    t.kind = T_DATE;
                } else if (sf_time_parse(t.text, &t.ms)) {
                    t.kind = T_DATETIME;
                } else {
                    fail(p, "MALFORMED_QUERY", "invalid date/datetime literal: %s", t.text);
                    free(t.text);
                    return false;
                }
            } else {
                s++;
                while (isdigit((unsigned char)*s) || *s == '.')
                    s++;
                t.text = xstrndup(b, (size_t)(s - b));
                char *end;
                t.num = strtod(t.text, &end);
                if (*end || isalpha((unsigned char)*s)) {
                    fail(p, "MALFORMED_QUERY", "unexpected token: %s", t.text);
                    free(t.text);
                    return false;
                }
                t.kind = T_NUMBER;
            }
        } else if (strchr("(),=<>!", *s)) {
            const char *b = s;
            if ((s[0] == '!' && s[1] == '=') || (s[0] == '<' && (s[1] == '=' || s[1] == '>')) ||
                (s[0] == '>' && s[1] == '='))
                s += 2;
            else if (*s == '!') {
                fail(p, "MALFORMED_QUERY", "unexpected token: %s", "!");
                return false;
            } else
                s++;
            t.kind = T_PUNCT;
            t.text = xstrndup(b, (size_t)(s - b));
        } else {
            char c[2] = {*s, '\0'};
            fail(p, "MALFORMED_QUERY", "unexpected token: %s", c);
            return false;
        }
        push(&p->toks, &p->ntoks, &cap, t);
    }
    push(&p->toks, &p->ntoks, &cap, (struct tok){T_END, NULL, 0, 0});
    return true;
}

static struct tok *peek(struct parser *p)
{
    return &p->toks[p->pos];
}

static bool is_kw(const struct tok *t, const char *kw)
{
    return t->kind == T_IDENT && strcasecmp(t->text, kw) == 0;
}

static bool is_punct(const struct tok *t, const char *s)
{
    return t->kind == T_PUNCT && strcmp(t->text, s) == 0;
}

static void unexpected(struct parser *p)
{
    struct tok *t = peek(p);
    fail(p, "MALFORMED_QUERY", "unexpected token: %s", t->kind == T_END ? "<EOF>" : t->text);
}

/* ---- field references -------------------------------------------------------------------- */

static bool resolve(struct parser *p, const char *text, struct fref *f)
{
    struct buf path;
    char *copy = xstrdup(text);
    char *save = NULL;
    char *parts[6];
    size_t n = 0;
    memset(f, 0, sizeof(*f));
    for (char *part = strtok_r(copy, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
        if (n == 6) {
            free(copy);
            fail(p, "MALFORMED_QUERY", "field path too deep: %s", text);
            return false;
        }
        parts[n++] = part;
    }
    if (n == 0 || text[strlen(text) - 1] == '.') {
        free(copy);
        fail(p, "MALFORMED_QUERY", "unexpected token: %s", text);
        return false;
    }
    /* SOQL allows the FROM object's name as a prefix: Opportunity.Name. */
    size_t start = 0;
    if (n > 1 && strcasecmp(parts[0], p->from->name) == 0 &&
        !sf_store_relationship(p->from, parts[0]))
        start = 1;
    buf_init(&path, 0);
    const struct sf_object *obj = p->from;
    f->objs[0] = obj;
    for (size_t i = start; i + 1 < n; i++) {
        const struct sf_field *rel = sf_store_relationship(obj, parts[i]);
        const struct sf_object *target = rel ? sf_store_object(rel->ref_to, obj->is_tooling) : NULL;
        if (!target)
            target = rel ? sf_store_object(rel->ref_to, false) : NULL;
        if (!rel || !target || f->depth == 4) {
            char *msg = xasprintf("Didn't understand relationship '%s' in field path. If you are "
                                  "attempting to use a custom relationship, be sure to append the "
                                  "'__r' after the custom relationship name. Please reference your "
                                  "WSDL or the describe call for the appropriate names.",
                                  parts[i]);
            fail(p, "INVALID_FIELD", "%s", msg);
            free(msg);
            buf_clear(&path);
            free(copy);
            return false;
        }
        buf_printf(&path, "%s.", rel->rel_name);
        f->hops[f->depth++] = rel;
        obj = target;
        f->objs[f->depth] = obj;
    }
    f->field = sf_store_field(obj, parts[n - 1]);
    if (!f->field) {
        char *msg = xasprintf("No such column '%s' on entity '%s'. If you are attempting to use a "
                              "custom field, be sure to append the '__c' after the custom field "
                              "name. Please reference your WSDL or the describe call for the "
                              "appropriate names.",
                              parts[n - 1], obj->name);
        fail(p, "INVALID_FIELD", "%s", msg);
        free(msg);
        buf_clear(&path);
        free(copy);
        return false;
    }
    buf_printf(&path, "%s", f->field->name);
    f->path = buf_steal(&path);
    free(copy);
    return true;
}

/* The value of f on rec: NULL when a parent on the path is missing. Borrowed. */
static const cJSON *fref_value(const struct fref *f, const struct sf_record *rec,
                               const struct sf_record **owner)
{
    const struct sf_record *r = rec;
    for (size_t i = 0; i < f->depth; i++) {
        const cJSON *idv = cJSON_GetObjectItemCaseSensitive(r->values, f->hops[i]->name);
        if (!cJSON_IsString(idv))
            return NULL;
        r = sf_store_find(idv->valuestring, NULL);
        if (!r)
            return NULL;
    }
    if (owner)
        *owner = r;
    return cJSON_GetObjectItemCaseSensitive(r->values, f->field->name);
}

/* ---- WHERE ------------------------------------------------------------------------------- */

static bool is_text(enum sf_type t)
{
    return t == SF_STRING || t == SF_TEXTAREA || t == SF_PICKLIST || t == SF_EMAIL || t == SF_URL ||
           t == SF_PHONE || t == SF_MULTIPICKLIST;
}

static bool parse_value(struct parser *p, const struct fref *f, struct val *v)
{
    struct tok *t = peek(p);
    const struct sf_field *fld = f->field;
    const char *want = NULL;
    memset(v, 0, sizeof(*v));
    if (is_kw(t, "null")) {
        v->kind = V_NULL;
        p->pos++;
        return true;
    }
    /* Relative date literals (TODAY, LAST_N_DAYS:n, ...) are real SOQL outside the subset. */
    if (t->kind == T_IDENT && !is_kw(t, "true") && !is_kw(t, "false") &&
        (fld->type == SF_DATE || fld->type == SF_DATETIME)) {
        fail(p, "MALFORMED_QUERY", "date literal %s is not supported by the sandbox", t->text);
        return false;
    }
    switch (fld->type) {
    case SF_ID:
    case SF_REFERENCE: {
        char norm[19];
        if (t->kind != T_STRING) {
            want = "string and should be enclosed in quotes";
            break;
        }
        if (!sf_id_normalize(t->text, norm)) {
            fail(p, "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: %s", t->text);
            return false;
        }
        v->kind = V_STRING;
        v->str = xstrdup(norm);
        p->pos++;
        return true;
    }
    case SF_BOOL:
        if (!is_kw(t, "true") && !is_kw(t, "false")) {
            want = "boolean and should not be enclosed in quotes";
            break;
        }
        v->kind = V_BOOL;
        v->b = is_kw(t, "true");
        p->pos++;
        return true;
    case SF_INT:
    case SF_DOUBLE:
    case SF_CURRENCY:
    case SF_PERCENT:
        if (t->kind != T_NUMBER) {
            want = "double and should not be enclosed in quotes";
            break;
        }
        v->kind = V_NUMBER;
        v->num = t->num;
        p->pos++;
        return true;
    case SF_DATE:
        if (t->kind != T_DATE) {
            want = "date and should not be enclosed in quotes";
            break;
        }
        v->kind = V_DATE;
        v->str = xstrdup(t->text);
        p->pos++;
        return true;
    case SF_DATETIME:
        if (t->kind != T_DATETIME) {
            want = "dateTime and should not be enclosed in quotes";
            break;
        }
        v->kind = V_DATETIME;
        v->ms = t->ms;
        p->pos++;
        return true;
    case SF_COMPLEX:
        fail(p, "INVALID_FIELD", "field '%s' can not be filtered in a query call", fld->name);
        return false;
    default:
        if (t->kind != T_STRING) {
            want = "string and should be enclosed in quotes";
            break;
        }
        v->kind = V_STRING;
        v->str = xstrdup(t->text);
        p->pos++;
        return true;
    }
    if (t->kind == T_END || is_punct(t, ")")) {
        unexpected(p);
        return false;
    }
    char *msg =
        xasprintf("value of filter criterion for field '%s' must be of type %s", fld->name, want);
    fail(p, "INVALID_QUERY_FILTER_OPERATOR", "%s", msg);
    free(msg);
    return false;
}

static void free_cond(struct cond *c)
{
    if (!c)
        return;
    free_cond(c->a);
    free_cond(c->b);
    free(c->f.path);
    for (size_t i = 0; i < c->nvals; i++)
        free(c->vals[i].str);
    free(c->vals);
    free(c);
}

static struct cond *parse_expr(struct parser *p);

static struct cond *parse_unary(struct parser *p)
{
    struct tok *t = peek(p);
    struct cond *c = xcalloc(1, sizeof(*c));
    if (is_kw(t, "NOT")) {
        p->pos++;
        c->kind = C_NOT;
        c->a = parse_unary(p);
        if (!c->a)
            goto fail;
        return c;
    }
    if (is_punct(t, "(")) {
        p->pos++;
        if (is_kw(peek(p), "SELECT")) {
            fail(p, "MALFORMED_QUERY", "semi-join subqueries are not supported by the sandbox");
            goto fail;
        }
        free(c);
        c = parse_expr(p);
        if (!c)
            return NULL;
        if (!is_punct(peek(p), ")")) {
            unexpected(p);
            goto fail;
        }
        p->pos++;
        return c;
    }
    if (t->kind != T_IDENT) {
        unexpected(p);
        goto fail;
    }
    if (is_punct(&p->toks[p->pos + 1], "(")) {
        fail(p, "MALFORMED_QUERY", "functions in WHERE are not supported by the sandbox: %s",
             t->text);
        goto fail;
    }
    if (!resolve(p, t->text, &c->f))
        goto fail;
    p->pos++;
    t = peek(p);
    if (c->f.field->type == SF_TEXTAREA && c->f.field->length > 255) {
        fail(p, "INVALID_FIELD", "field '%s' can not be filtered in a query call",
             c->f.field->name);
        goto fail;
    }
    if (is_kw(t, "IN") || (is_kw(t, "NOT") && is_kw(&p->toks[p->pos + 1], "IN"))) {
        c->kind = is_kw(t, "NOT") ? C_NOT_IN : C_IN;
        p->pos += c->kind == C_NOT_IN ? 2 : 1;
        if (!is_punct(peek(p), "(")) {
            unexpected(p);
            goto fail;
        }
        p->pos++;
        if (is_kw(peek(p), "SELECT")) {
            fail(p, "MALFORMED_QUERY", "semi-join subqueries are not supported by the sandbox");
            goto fail;
        }
        for (;;) {
            c->vals = xrealloc(c->vals, (c->nvals + 1) * sizeof(*c->vals));
            if (!parse_value(p, &c->f, &c->vals[c->nvals]))
                goto fail;
            c->nvals++;
            if (is_punct(peek(p), ",")) {
                p->pos++;
                continue;
            }
            if (is_punct(peek(p), ")")) {
                p->pos++;
                break;
            }
            unexpected(p);
            goto fail;
        }
        return c;
    }
    if (is_kw(t, "LIKE")) {
        c->kind = C_LIKE;
        p->pos++;
        if (!is_text(c->f.field->type)) {
            fail(p, "INVALID_QUERY_FILTER_OPERATOR", "invalid operator on field '%s'",
                 c->f.field->name);
            goto fail;
        }
        if (peek(p)->kind != T_STRING) {
            unexpected(p);
            goto fail;
        }
        c->vals = xcalloc(1, sizeof(*c->vals));
        c->nvals = 1;
        c->vals[0].kind = V_STRING;
        c->vals[0].str = xstrdup(peek(p)->text);
        p->pos++;
        return c;
    }
    static const struct {
        const char *s;
        enum cmp_op op;
    } ops[] = {{"=", OP_EQ}, {"!=", OP_NE}, {"<>", OP_NE}, {"<", OP_LT},
               {">", OP_GT}, {"<=", OP_LE}, {">=", OP_GE}};
    c->kind = C_CMP;
    size_t i;
    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (is_punct(t, ops[i].s))
            break;
    if (i == sizeof(ops) / sizeof(ops[0])) {
        unexpected(p);
        goto fail;
    }
    c->op = ops[i].op;
    p->pos++;
    c->vals = xcalloc(1, sizeof(*c->vals));
    c->nvals = 1;
    if (!parse_value(p, &c->f, &c->vals[0]))
        goto fail;
    if (c->f.field->type == SF_BOOL && c->op != OP_EQ && c->op != OP_NE) {
        fail(p, "INVALID_QUERY_FILTER_OPERATOR", "invalid operator on boolean field: %s",
             c->f.field->name);
        goto fail;
    }
    if (c->vals[0].kind == V_NULL && c->op != OP_EQ && c->op != OP_NE) {
        fail(p, "INVALID_QUERY_FILTER_OPERATOR", "invalid operator with null: %s",
             c->f.field->name);
        goto fail;
    }
    return c;
fail:
    free_cond(c);
    return NULL;
}

/* SOQL requires parentheses when AND and OR are mixed at one level. */
static struct cond *parse_expr(struct parser *p)
{
    struct cond *left = parse_unary(p);
    int kind = -1;
    while (left) {
        struct tok *t = peek(p);
        int k = is_kw(t, "AND") ? C_AND : is_kw(t, "OR") ? C_OR : -1;
        if (k < 0)
            return left;
        if (kind >= 0 && k != kind) {
            unexpected(p);
            free_cond(left);
            return NULL;
        }
        kind = k;
        p->pos++;
        struct cond *right = parse_unary(p);
        if (!right) {
            free_cond(left);
            return NULL;
        }
        struct cond *c = xcalloc(1, sizeof(*c));
        c->kind = (enum cond_kind)k;
        c->a = left;
        c->b = right;
        left = c;
    }
    return NULL;
}

/* Compares a stored value with a literal: <0, 0, >0. Only called with both non-null. */
static int compare(const struct sf_field *f, const cJSON *v, const struct val *lit)
{
    switch (lit->kind) {
    case V_STRING:
        if (!cJSON_IsString(v))
            return 1;
        if (f->type == SF_ID || f->type == SF_REFERENCE)
            return strcmp(v->valuestring, lit->str);
        return strcasecmp(v->valuestring, lit->str);
    case V_NUMBER:
        return v->valuedouble < lit->num ? -1 : v->valuedouble > lit->num ? 1 : 0;
    case V_BOOL:
        return cJSON_IsTrue(v) == lit->b ? 0 : 1;
    case V_DATE:
        return strcmp(v->valuestring, lit->str);
    case V_DATETIME: {
        int64_t ms = 0;
        if (!sf_time_parse(v->valuestring, &ms))
            return 1;
        return ms < lit->ms ? -1 : ms > lit->ms ? 1 : 0;
    }
    default:
        return 1;
    }
}

static bool like(const char *s, const char *pat)
{
    for (; *pat; pat++, s++) {
        if (*pat == '%') {
            for (const char *t = s;; t++) {
                if (like(t, pat + 1))
                    return true;
                if (!*t)
                    return false;
            }
        }
        if (!*s)
            return false;
        if (*pat == '\\' && pat[1])
            pat++;
        else if (*pat == '_')
            continue;
        if (tolower((unsigned char)*s) != tolower((unsigned char)*pat))
            return false;
    }
    return *s == '\0';
}

static bool eval(const struct cond *c, const struct sf_record *rec)
{
    switch (c->kind) {
    case C_AND:
        return eval(c->a, rec) && eval(c->b, rec);
    case C_OR:
        return eval(c->a, rec) || eval(c->b, rec);
    case C_NOT:
        return !eval(c->a, rec);
    default:
        break;
    }
    const cJSON *v = fref_value(&c->f, rec, NULL);
    bool is_null = !v || cJSON_IsNull(v);
    if (c->kind == C_LIKE)
        return !is_null && like(v->valuestring, c->vals[0].str);
    if (c->kind == C_IN || c->kind == C_NOT_IN) {
        bool found = false;
        for (size_t i = 0; i < c->nvals && !found; i++) {
            if (c->vals[i].kind == V_NULL)
                found = is_null;
            else
                found = !is_null && compare(c->f.field, v, &c->vals[i]) == 0;
        }
        return c->kind == C_IN ? found : !found;
    }
    const struct val *lit = &c->vals[0];
    if (lit->kind == V_NULL)
        return c->op == OP_EQ ? is_null : !is_null;
    if (is_null)
        return c->op == OP_NE;
    int r = compare(c->f.field, v, lit);
    switch (c->op) {
    case OP_EQ:
        return r == 0;
    case OP_NE:
        return r != 0;
    case OP_LT:
        return r < 0;
    case OP_GT:
        return r > 0;
    case OP_LE:
        return r <= 0;
    default:
        return r >= 0;
    }
}

/* ---- ORDER BY ---------------------------------------------------------------------------- */

struct sort_ctx {
    const struct order_item *items;
    size_t n;
};

static struct sort_ctx sort_ctx; /* qsort has no context argument; used under the lock only */

struct sort_row {
    struct sf_record *rec;
    size_t index;
};

static int cmp_values(const struct sf_field *f, const cJSON *a, const cJSON *b)
{
    switch (f->type) {
    case SF_BOOL:
        return (int)cJSON_IsTrue(a) - (int)cJSON_IsTrue(b);
    case SF_INT:
    case SF_DOUBLE:
    case SF_CURRENCY:
    case SF_PERCENT:
        return a->valuedouble < b->valuedouble ? -1 : a->valuedouble > b->valuedouble ? 1 : 0;
    case SF_ID:
    case SF_REFERENCE:
    case SF_DATE:
    case SF_DATETIME: /* stored normalised to +0000, so text order is time order */
        return strcmp(a->valuestring, b->valuestring);
    default:
        return strcasecmp(a->valuestring, b->valuestring);
    }
}

static int sort_rows(const void *pa, const void *pb)
{
    const struct sort_row *a = pa, *b = pb;
    for (size_t i = 0; i < sort_ctx.n; i++) {
        const struct order_item *it = &sort_ctx.items[i];
        const cJSON *va = fref_value(&it->f, a->rec, NULL);
        const cJSON *vb = fref_value(&it->f, b->rec, NULL);
        bool na = !va || cJSON_IsNull(va), nb = !vb || cJSON_IsNull(vb);
        int r;
        if (na || nb) {
            if (na && nb)
                continue;
            r = na ? -1 : 1;
            if (!it->nulls_first)
                r = -r;
            return r;
        }
        r = cmp_values(it->f.field, va, vb);
        if (r != 0)
            return it->is_desc ? -r : r;
    }
    return a->index < b->index ? -1 : 1;
}

/* ---- rendering ------------------------------------------------------------------------- */

static void render_field(cJSON *out, const struct fref *f, const struct sf_record *rec,
                         const char *version)
{
    cJSON *node = out;
    const struct sf_record *r = rec;
    for (size_t i = 0; i < f->depth; i++) {
        const char *rel = f->hops[i]->rel_name;
        cJSON *child = cJSON_GetObjectItemCaseSensitive(node, rel);
        if (child && cJSON_IsNull(child))
            return;
        const cJSON *idv = cJSON_GetObjectItemCaseSensitive(r->values, f->hops[i]->name);
        const struct sf_record *parent =
            cJSON_IsString(idv) ? sf_store_find(idv->valuestring, NULL) : NULL;
        if (!parent) {
            if (!child)
                cJSON_AddItemToObject(node, rel, cJSON_CreateNull());
            return;
        }
        if (!child) {
            child = cJSON_AddObjectToObject(node, rel);
            cJSON *attrs = cJSON_AddObjectToObject(child, "attributes");
            cJSON_AddStringToObject(attrs, "type", f->objs[i + 1]->name);
            char *url = sf_record_url(f->objs[i + 1], parent->id, version);
            cJSON_AddStringToObject(attrs, "url", url);
            free(url);
        }
        node = child;
        r = parent;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->values, f->field->name);
    if (!cJSON_GetObjectItemCaseSensitive(node, f->field->name))
        cJSON_AddItemToObject(node, f->field->name,
                              v ? cJSON_Duplicate(v, true) : cJSON_CreateNull());
}

/* ---- the query --------------------------------------------------------------------------- */

static void refresh_permissions(void)
{
    struct sf_object *upa = sf_store_object("UserPermissionAccess", false);
    const char *mode = sb_setting_str("sf_permissions");
    bool all = !mode || strcmp(mode, "all") == 0;
    bool meta = all || strcmp(mode, "modify_metadata") == 0;
    for (size_t i = 0; upa && i < upa->record_count; i++) {
        cJSON *v = upa->records[i]->values;
        cJSON_ReplaceItemInObjectCaseSensitive(v, "PermissionsApiEnabled", cJSON_CreateTrue());
        cJSON_ReplaceItemInObjectCaseSensitive(v, "PermissionsViewSetup", cJSON_CreateTrue());
        cJSON_ReplaceItemInObjectCaseSensitive(v, "PermissionsModifyAllData",
                                               cJSON_CreateBool(all));
        cJSON_ReplaceItemInObjectCaseSensitive(v, "PermissionsModifyMetadata",
                                               cJSON_CreateBool(meta));
        cJSON_ReplaceItemInObjectCaseSensitive(v, "PermissionsCustomizeApplication",
                                               cJSON_CreateBool(meta));
    }
}

/* "LIMIT n" / "OFFSET n": *out keeps its value when the keyword is absent. */
static bool count_clause(struct parser *p, const char *kw, int64_t *out)
{
    if (!is_kw(peek(p), kw))
        return true;
    p->pos++;
    struct tok *t = peek(p);
    if (t->kind != T_NUMBER || t->num < 0 || t->num != (double)(int64_t)t->num) {
        unexpected(p);
        return false;
    }
    *out = (int64_t)t->num;
    p->pos++;
    return true;
}

/* ---- the records a query looks at ---------------------------------------------------------- */

/* The records a query evaluates its WHERE on: every record of the FROM object, or (is_set) only
 * these, in the store's order: a subset that holds every record the WHERE can match, so the
 * answer is the same. */
struct rows_in {
    void *const *records;
    size_t count;
    bool is_set;
};

/* An IN of ids the WHERE requires (itself, or one side of an AND), every value a non-empty
 * string: a record whose value is none of them cannot match. NULL when there is none. */
static const struct cond *required_id_in(const struct cond *c)
{
    if (!c)
        return NULL;
    if (c->kind == C_AND) {
        const struct cond *a = required_id_in(c->a);
        return a ? a : required_id_in(c->b);
    }
    if (c->kind != C_IN || (c->f.field->type != SF_ID && c->f.field->type != SF_REFERENCE))
        return NULL;
    for (size_t i = 0; i < c->nvals; i++)
        if (c->vals[i].kind != V_STRING || !c->vals[i].str[0])
            return NULL;
    return c;
}

/* ---- parent-to-child subqueries ------------------------------------------------------ */

/* The child relationships the sandbox knows: (SELECT … FROM OpportunityContactRoles) in a query
 * of opportunities, and so on. UNVERIFIED against a live org beyond the standard names. */
static const struct child_rel {
    const char *parent;
    const char *name;
    const char *child;
    const char *field;
} child_rels[] = {
    {"Opportunity", "OpportunityContactRoles", "OpportunityContactRole", "OpportunityId"},
    {"Account", "Contacts", "Contact", "AccountId"},
    {"Account", "Opportunities", "Opportunity", "AccountId"},
    {"Contact", "OpportunityContactRoles", "OpportunityContactRole", "ContactId"},
};

struct subquery {
    const struct child_rel *rel;
    char *fields; /* "Id, ContactId, Contact.Email" */
};

/* (SELECT fields FROM Relationship) at p->pos, consumed through its ")". Clauses inside the
 * subquery (WHERE, ORDER BY, LIMIT) are not supported by the sandbox. The fields are checked by
 * running the child query once. */
static bool parse_subquery(struct parser *p, bool include_deleted, const char *version,
                           struct subquery *sq)
{
    struct buf fields;
    buf_init(&fields, 0);
    memset(sq, 0, sizeof(*sq));
    p->pos += 2; /* ( SELECT */
    for (;;) {
        struct tok *t = peek(p);
        if (t->kind != T_IDENT || is_kw(t, "FROM")) {
            buf_clear(&fields);
            unexpected(p);
            return false;
        }
        buf_printf(&fields, "%s%s", fields.len ? ", " : "", t->text);
        p->pos++;
        if (is_punct(peek(p), ",")) {
            p->pos++;
            continue;
        }
        if (is_kw(peek(p), "FROM"))
            break;
        buf_clear(&fields);
        unexpected(p);
        return false;
    }
    p->pos++;
    struct tok *name = peek(p);
    for (size_t i = 0; name->kind == T_IDENT && i < sizeof(child_rels) / sizeof(child_rels[0]); i++)
        if (strcasecmp(child_rels[i].parent, p->from->name) == 0 &&
            strcasecmp(child_rels[i].name, name->text) == 0)
            sq->rel = &child_rels[i];
    if (!sq->rel) {
        char *msg = xasprintf("Didn't understand relationship '%s' in FROM part of query call. If "
                              "you are attempting to use a custom relationship, be sure to append "
                              "the '__r' after the custom relationship name. Please reference your "
                              "WSDL or the describe call for the appropriate names.",
                              name->text ? name->text : "");
        fail(p, "INVALID_TYPE", "%s", msg);
        free(msg);
        buf_clear(&fields);
        return false;
    }
    p->pos++;
    if (!is_punct(peek(p), ")")) {
        fail(p, "MALFORMED_QUERY", "clauses in a subquery are not supported by the sandbox: %s",
             peek(p)->text ? peek(p)->text : "");
        buf_clear(&fields);
        return false;
    }
    p->pos++;
    sq->fields = buf_steal(&fields);
    char *check = xasprintf("SELECT %s FROM %s WHERE Id = null", sq->fields, sq->rel->child);
    cJSON *none = NULL;
    bool ok = sf_soql_run(check, false, include_deleted, version, &none, p->err);
    cJSON_Delete(none);
    free(check);
    if (!ok) {
        p->failed = true;
        free(sq->fields);
        sq->fields = NULL;
    }
    return ok;
}

static bool run(const char *soql, bool tooling, bool include_deleted, const char *version,
                const struct rows_in *in, cJSON **records, struct sf_error *err);

/* The child records of sq's relationship by the parent id they hold ({field} value as stored),
 * in the store's order: made once per query, so each parent's children are looked up instead of
 * the child object being scanned once per parent row (200 opportunities' roles among 20,000
 * scanned 200 times made a query take seconds). Free with vindex_free. */
static struct vindex *children_by_parent(const struct subquery *sq)
{
    struct vindex *x = vindex_new();
    const struct sf_object *child = sf_store_object(sq->rel->child, false);
    for (size_t i = 0; child && i < child->record_count; i++) {
        struct sf_record *r = child->records[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->values, sq->rel->field);
        if (cJSON_IsString(v))
            vindex_add(x, v->valuestring, r);
    }
    return x;
}

/* The children of rec as Salesforce renders a subquery's result: null when there are none,
 * else {"totalSize", "done": true, "records"}. kids: children_by_parent's index. */
static bool render_children(cJSON *out, const struct subquery *sq, const struct vindex *kids_of,
                            const struct sf_record *rec, bool include_deleted, const char *version,
                            struct sf_error *err)
{
    char *q = xasprintf("SELECT %s FROM %s WHERE %s = '%s'", sq->fields, sq->rel->child,
                        sq->rel->field, rec->id);
    struct rows_in in = {0};
    in.count = vindex_get(kids_of, rec->id, &in.records);
    in.is_set = true;
    cJSON *kids = NULL;
    bool ok = run(q, false, include_deleted, version, &in, &kids, err);
    free(q);
    if (!ok)
        return false;
    if (cJSON_GetArraySize(kids) == 0) {
        cJSON_Delete(kids);
        cJSON_AddNullToObject(out, sq->rel->name);
        return true;
    }
    cJSON *set = cJSON_AddObjectToObject(out, sq->rel->name);
    cJSON_AddNumberToObject(set, "totalSize", cJSON_GetArraySize(kids));
    cJSON_AddTrueToObject(set, "done");
    cJSON_AddItemToObject(set, "records", kids);
    return true;
}

static const char *const unsupported_kw[] = {"GROUP", "HAVING", "TYPEOF", "WITH", "FOR",
                                             "USING", "UPDATE", "ROLLUP", "CUBE", NULL};

bool sf_soql_run(const char *soql, bool tooling, bool include_deleted, const char *version,
                 cJSON **records, struct sf_error *err)
{
    return run(soql, tooling, include_deleted, version, NULL, records, err);
}

/* sf_soql_run over the records in (NULL: every record of the FROM object). */
static bool run(const char *soql, bool tooling, bool include_deleted, const char *version,
                const struct rows_in *in, cJSON **records, struct sf_error *err)
{
    struct parser p;
    struct fref *sel = NULL;
    size_t nsel = 0;
    struct cond *where = NULL;
    struct order_item *order = NULL;
    size_t norder = 0;
    int64_t limit = -1, offset = 0;
    struct sort_row *rows = NULL;
    size_t nrows = 0;
    struct vindex *id_set = NULL;
    struct vindex **kids_of = NULL; /* per subquery: children_by_parent */
    bool ok = false;
    size_t sel_start;
    struct subquery *subs = NULL;
    size_t nsubs = 0;

    memset(&p, 0, sizeof(p));
    p.err = err;
    if (!soql || !*soql) {
        sf_error_set(err, 400, "MALFORMED_QUERY", NULL, "unexpected token: <EOF>");
        return false;
    }
    if (!lex(soql, &p))
        goto out;
    if (!is_kw(peek(&p), "SELECT")) {
        unexpected(&p);
        goto out;
    }
    p.pos++;
    sel_start = p.pos;
    /* Find FROM first: the select list is resolved against its object. */
    while (peek(&p)->kind != T_END && !is_kw(peek(&p), "FROM")) {
        if (is_punct(peek(&p), "(") && is_kw(&p.toks[p.pos + 1], "SELECT")) {
            for (int depth = 0; peek(&p)->kind != T_END; p.pos++) {
                depth += is_punct(peek(&p), "(") - is_punct(peek(&p), ")");
                if (depth == 0)
                    break;
            }
        } else if (is_punct(peek(&p), "(")) {
            fail(&p, "MALFORMED_QUERY",
                 "functions and aggregates in the select list are not supported by the sandbox: "
                 "%s",
                 p.pos > 0 ? p.toks[p.pos - 1].text : "(");
            goto out;
        }
        if (peek(&p)->kind != T_END)
            p.pos++;
    }
    if (!is_kw(peek(&p), "FROM")) {
        unexpected(&p);
        goto out;
    }
    p.pos++;
    if (peek(&p)->kind != T_IDENT) {
        unexpected(&p);
        goto out;
    }
    p.from = sf_store_object(peek(&p)->text, tooling);
    if (!p.from) {
        char *msg = xasprintf("sObject type '%s' is not supported. If you are attempting to use "
                              "a custom object, be sure to append the '__c' after the entity "
                              "name. Please reference your WSDL or the describe call for the "
                              "appropriate names.",
                              peek(&p)->text);
        fail(&p, "INVALID_TYPE", "%s", msg);
        free(msg);
        goto out;
    }
    size_t after_from = p.pos + 1;
    p.pos = sel_start;
    for (;;) {
        struct tok *t = peek(&p);
        if (is_punct(t, "(")) {
            subs = xrealloc(subs, (nsubs + 1) * sizeof(*subs));
            if (!parse_subquery(&p, include_deleted, version, &subs[nsubs]))
                goto out;
            nsubs++;
            if (is_punct(peek(&p), ",")) {
                p.pos++;
                continue;
            }
            if (is_kw(peek(&p), "FROM"))
                break;
            unexpected(&p);
            goto out;
        }
        if (t->kind != T_IDENT || is_kw(t, "FROM")) {
            unexpected(&p);
            goto out;
        }
        if (is_punct(&p.toks[p.pos + 1], "(")) {
            fail(&p, "MALFORMED_QUERY",
                 "functions and aggregates in the select list are not supported by the "
                 "sandbox: %s",
                 t->text);
            goto out;
        }
        sel = xrealloc(sel, (nsel + 1) * sizeof(*sel));
        if (!resolve(&p, t->text, &sel[nsel]))
            goto out;
        nsel++;
        for (size_t i = 0; i + 1 < nsel; i++)
            if (strcasecmp(sel[i].path, sel[nsel - 1].path) == 0) {
                fail(&p, "MALFORMED_QUERY", "duplicate field selected: %s", sel[i].path);
                goto out;
            }
        p.pos++;
        if (is_punct(peek(&p), ",")) {
            p.pos++;
            continue;
        }
        if (is_kw(peek(&p), "FROM"))
            break;
        unexpected(&p);
        goto out;
    }
    p.pos = after_from;
    for (size_t i = p.pos; p.toks[i].kind != T_END; i++)
        for (const char *const *kw = unsupported_kw; *kw; kw++)
            if (is_kw(&p.toks[i], *kw)) {
                fail(&p, "MALFORMED_QUERY", "%s clauses are not supported by the sandbox", *kw);
                goto out;
            }
    if (is_kw(peek(&p), "WHERE")) {
        p.pos++;
        where = parse_expr(&p);
        if (!where)
            goto out;
    }
    if (is_kw(peek(&p), "ORDER")) {
        p.pos++;
        if (!is_kw(peek(&p), "BY")) {
            unexpected(&p);
            goto out;
        }
        p.pos++;
        for (;;) {
            struct tok *t = peek(&p);
            if (t->kind != T_IDENT) {
                unexpected(&p);
                goto out;
            }
            order = xrealloc(order, (norder + 1) * sizeof(*order));
            memset(&order[norder], 0, sizeof(order[norder]));
            if (!resolve(&p, t->text, &order[norder].f))
                goto out;
            norder++;
            if (order[norder - 1].f.field->type == SF_TEXTAREA &&
                order[norder - 1].f.field->length > 255) {
                fail(&p, "INVALID_FIELD", "field '%s' can not be sorted in a query call", t->text);
                goto out;
            }
            p.pos++;
            struct order_item *it = &order[norder - 1];
            if (is_kw(peek(&p), "ASC") || is_kw(peek(&p), "DESC")) {
                it->is_desc = is_kw(peek(&p), "DESC");
                p.pos++;
            }
            it->nulls_first = !it->is_desc;
            if (is_kw(peek(&p), "NULLS")) {
                p.pos++;
                if (!is_kw(peek(&p), "FIRST") && !is_kw(peek(&p), "LAST")) {
                    unexpected(&p);
                    goto out;
                }
                it->nulls_first = is_kw(peek(&p), "FIRST");
                p.pos++;
            }
            if (!is_punct(peek(&p), ","))
                break;
            p.pos++;
        }
    }
    if (!count_clause(&p, "LIMIT", &limit) || !count_clause(&p, "OFFSET", &offset))
        goto out;
    if (offset > 2000) {
        fail(&p, "NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000");
        goto out;
    }
    if (peek(&p)->kind != T_END) {
        unexpected(&p);
        goto out;
    }

    if (p.from->is_virtual)
        refresh_permissions();
    /* An Id IN (...) of 200 ids is a set looked up once per record, not 200 comparisons. */
    const struct cond *ids = required_id_in(where);
    if (ids) {
        id_set = vindex_new();
        for (size_t i = 0; i < ids->nvals; i++)
            vindex_add(id_set, ids->vals[i].str, NULL);
    }
    size_t total = in ? in->count : p.from->record_count;
    rows = xcalloc(total + 1, sizeof(*rows));
    for (size_t i = 0; i < total; i++) {
        struct sf_record *r = in ? in->records[i] : p.from->records[i];
        if (r->is_deleted && !include_deleted)
            continue;
        if (id_set) {
            const cJSON *v = fref_value(&ids->f, r, NULL);
            void *const *hit = NULL;
            if (!cJSON_IsString(v) || vindex_get(id_set, v->valuestring, &hit) == 0)
                continue;
        }
        if (where && !eval(where, r))
            continue;
        rows[nrows].rec = r;
        rows[nrows].index = i;
        nrows++;
    }
    if (norder) {
        sort_ctx.items = order;
        sort_ctx.n = norder;
        qsort(rows, nrows, sizeof(*rows), sort_rows);
    }
    size_t first = (size_t)offset < nrows ? (size_t)offset : nrows;
    size_t last = nrows;
    if (limit >= 0 && first + (size_t)limit < last)
        last = first + (size_t)limit;
    for (size_t i = 0; i < nsel; i++)
        if (sel[i].field->is_single_row && last - first > 1) {
            sf_error_set(err, 400, "MALFORMED_QUERY", NULL,
                         "When retrieving results with Metadata or FullName fields, the query "
                         "qualifications must specify no more than one row for retrieval. "
                         "Result size: %zu",
                         last - first);
            p.failed = true;
            goto out;
        }
    kids_of = xcalloc(nsubs + 1, sizeof(*kids_of));
    for (size_t j = 0; j < nsubs && first < last; j++)
        kids_of[j] = children_by_parent(&subs[j]);
    *records = cJSON_CreateArray();
    for (size_t i = first; i < last; i++) {
        cJSON *rec = cJSON_CreateObject();
        cJSON *attrs = cJSON_AddObjectToObject(rec, "attributes");
        cJSON_AddStringToObject(attrs, "type", p.from->name);
        char *url = sf_record_url(p.from, rows[i].rec->id, version);
        cJSON_AddStringToObject(attrs, "url", url);
        free(url);
        for (size_t j = 0; j < nsel; j++)
            render_field(rec, &sel[j], rows[i].rec, version);
        for (size_t j = 0; j < nsubs; j++)
            if (!render_children(rec, &subs[j], kids_of[j], rows[i].rec, include_deleted, version,
                                 err)) {
                cJSON_Delete(rec);
                cJSON_Delete(*records);
                *records = NULL;
                p.failed = true;
                goto out;
            }
        cJSON_AddItemToArray(*records, rec);
    }
    ok = true;
out:
    for (size_t j = 0; kids_of && j < nsubs; j++)
        vindex_free(kids_of[j]);
    free(kids_of);
    vindex_free(id_set);
    free(rows);
    for (size_t i = 0; i < nsel; i++)
        free(sel[i].path);
    free(sel);
    for (size_t i = 0; i < nsubs; i++)
        free(subs[i].fields);
    free(subs);
    for (size_t i = 0; i < norder; i++)
        free(order[i].f.path);
    free(order);
    free_cond(where);
    for (size_t i = 0; i < p.ntoks; i++)
        free(p.toks[i].text);
    free(p.toks);
    return ok;
}
