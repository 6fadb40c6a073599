/* hs_companies_batch.c - account -> company for many accounts at once. Each step leaves the
 * accounts it cannot settle to the next one, and the accounts no step settles (a HubSpot refusal,
 * contacts that may point at a company) to hs_companies_find_or_create, one by one. */
#include "hs_companies_batch.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hs_companies.h"
#include "db.h"
#include "link.h"
#include "log.h"
#include "sf_id.h"
#include "sync_pair.h"
#include "util.h"

/* Whether a HubSpot company can hold an account id that dealsync has not linked, as this process
 * knows it. HELD_NONE: when checked, dealsync had linked no account and no company held an
 * account id (a first import into a HubSpot that never had Salesforce account ids); every
 * company dealsync has given an account id since then was linked before its batch ended, so an
 * account without a link cannot be held and its id need not be searched. HELD_MAYBE for the rest
 * of the process otherwise (also once a write of an account id may have left a company
 * unlinked: hs_companies_note_unlinked_write). */
enum held {
    HELD_UNKNOWN,
    HELD_NONE,
    HELD_MAYBE,
};
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static enum held held_state = HELD_UNKNOWN;

void hs_companies_note_unlinked_write(void)
{
    pthread_mutex_lock(&held_lock);
    held_state = HELD_MAYBE;
    pthread_mutex_unlock(&held_lock);
}

/* What the check finds: HELD_NONE when no account is linked and HubSpot counts no company
 * holding an account id (one search, limit 1, its total), HELD_UNKNOWN when either cannot be
 * read (the ids are searched this time), else HELD_MAYBE. */
static enum held check_held(struct hs_client *hs, PGconn *db, const struct config *cfg)
{
    const char *kind[] = {LINK_ACCOUNT};
    PGresult *r = PQexecParams(db, "SELECT 1 FROM record_link WHERE kind = $1 LIMIT 1", 1, NULL,
                               kind, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot count account links");
    bool is_linked = rc == ERR_OK && PQntuples(r) > 0;
    PQclear(r);
    if (rc != ERR_OK)
        return HELD_UNKNOWN;
    if (is_linked)
        return HELD_MAYBE;
    cJSON *group = cJSON_CreateObject();
    hs_search_filter(cJSON_AddArrayToObject(group, "filters"), cfg->hs_account_id_property,
                     "HAS_PROPERTY", NULL);
    long long total = -1;
    rc = hs_search_count(hs, "companies", group, &total);
    cJSON_Delete(group);
    enum held held = rc != ERR_OK ? HELD_UNKNOWN : total == 0 ? HELD_NONE : HELD_MAYBE;
    return held;
}

/* Whether the accounts' ids must be searched (see enum held). The first batch of the process
 * checks, the others wait for its answer. */
static bool must_search_ids(struct hs_client *hs, PGconn *db, const struct config *cfg)
{
    pthread_mutex_lock(&held_lock);
    if (held_state == HELD_UNKNOWN) {
        held_state = check_held(hs, db, cfg);
        if (held_state == HELD_NONE)
            log_info("no hubspot company holds a salesforce account id: accounts not linked are "
                     "not searched by id");
    }
    bool must = held_state != HELD_NONE;
    pthread_mutex_unlock(&held_lock);
    return must;
}

/* Longer domains are searched alone (hs_companies_find_or_create). */
#define DOMAIN_MAX_LEN 40

static const char *str(const cJSON *o, const char *name)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
    return s && s[0] ? s : NULL;
}

/* One account in play. */
struct acct {
    const char *id;       /* borrowed from the accounts object */
    const cJSON *account; /* borrowed */
    char *domain;         /* owned; NULL when none */
    char *company;        /* owned: the company found or created */
    bool is_matched;      /* found by domain: the account id must be stored on it */
    bool is_left;         /* left to hs_companies_find_or_create */
};

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct acct *)a)->id, ((const struct acct *)b)->id);
}

/* Every page of the search req (borrowed), its results appended to into. */
static enum err search_all(struct hs_client *hs, const cJSON *req, cJSON *into)
{
    char *after = NULL;
    enum err rc;
    do {
        cJSON *results = NULL;
        char *next = NULL;
        rc = hs_search(hs, "companies", req, after, &results, &next);
        free(after);
        after = next;
        while (rc == ERR_OK && cJSON_GetArraySize(results) > 0)
            cJSON_AddItemToArray(into, cJSON_DetachItemFromArray(results, 0));
        cJSON_Delete(results);
    } while (rc == ERR_OK && after);
    free(after);
    return rc;
}

static enum err save_link(PGconn *db, const char *account_id, const char *company_id)
{
    struct link l = {0};
    l.kind = LINK_ACCOUNT;
    l.sf_id = (char *)account_id;
    l.hs_id = (char *)company_id;
    return link_save(db, &l);
}

/* An account whose contacts are already in HubSpot: their company comes first. */
static enum err mark_contact_accounts(PGconn *db, const cJSON *contacts, struct acct *as, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (as[i].company)
            continue;
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(contacts, as[i].id))
        {
            struct link l = {0};
            if (as[i].is_left || !cJSON_IsString(c))
                continue;
            enum err rc = link_find_by_sf(db, LINK_CONTACT, c->valuestring, &l);
            if (rc == ERR_OK)
                as[i].is_left = true;
            link_clear(&l);
            if (rc != ERR_OK && rc != ERR_NOT_FOUND)
                return rc;
        }
    }
    return ERR_OK;
}

/* Search bodies stay under search's 3,000 characters (reference hubspot.md 4.2), with room for
 * the "after" cursor of a next page; a body takes up to 5 filter groups (ORed). */
#define SEARCH_BODY_MAX 2900
#define SEARCH_GROUPS_MAX 5

static bool wants_domain(const struct acct *a)
{
    return !a->company && !a->is_left && a->domain && strlen(a->domain) <= DOMAIN_MAX_LEN;
}

/* Adds value to req's last filter group when that group is an IN on property with room left,
 * else to a new group. False, and req unchanged, when the body would pass SEARCH_BODY_MAX or
 * need a sixth group. */
static bool add_term(cJSON *req, const char *property, const char *value)
{
    cJSON *groups = cJSON_GetObjectItemCaseSensitive(req, "filterGroups");
    int n = cJSON_GetArraySize(groups);
    cJSON *group = n > 0 ? cJSON_GetArrayItem(groups, n - 1) : NULL;
    cJSON *filter = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(group, "filters"), 0);
    cJSON *values = cJSON_GetObjectItemCaseSensitive(filter, "values");
    bool is_new = !group || strcmp(str(filter, "propertyName"), property) != 0 ||
                  cJSON_GetArraySize(values) >= HS_SEARCH_IN_MAX;
    if (is_new) {
        if (n >= SEARCH_GROUPS_MAX)
            return false;
        group = cJSON_CreateObject();
        filter = cJSON_CreateObject();
        cJSON_AddStringToObject(filter, "propertyName", property);
        cJSON_AddStringToObject(filter, "operator", "IN");
        values = cJSON_AddArrayToObject(filter, "values");
        cJSON_AddItemToArray(cJSON_AddArrayToObject(group, "filters"), filter);
        cJSON_AddItemToArray(groups, group);
    }
    cJSON_AddItemToArray(values, cJSON_CreateString(value));
    char *text = cJSON_PrintUnformatted(req);
    bool fits = strlen(text) <= SEARCH_BODY_MAX;
    free(text);
    if (!fits && is_new)
        cJSON_DeleteItemFromArray(groups, n);
    else if (!fits)
        cJSON_DeleteItemFromArray(values, cJSON_GetArraySize(values) - 1);
    return fits;
}

/* The company found that holds the account's id, for each account without one. */
static void match_ids(const struct config *cfg, const cJSON *found, struct acct *as, size_t n)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, found)
    {
        const char *held =
            str(cJSON_GetObjectItemCaseSensitive(c, "properties"), cfg->hs_account_id_property);
        for (size_t i = 0; held && str(c, "id") && i < n; i++) {
            if (as[i].company || !sf_id_equal(held, as[i].id))
                continue;
            as[i].company = xstrdup(str(c, "id"));
            as[i].is_left = false; /* a company holding its id comes before its contacts' */
        }
    }
}

/* Companies holding the accounts' ids (with by_id) and, with by_domain, companies with the
 * domains of the accounts none holds, appended to found. The ids come first and the domains after
 * them, packed into as few searches as the body allows, one filter group per property and 100
 * values: 200 accounts with ids and short domains take 3 searches where an id search and a domain
 * search per 100 took 4. A body's room left after the last ids takes the domains of accounts whose
 * id search is still out; the later ones only those of accounts no company holds. */
static enum err search_companies(struct hs_client *hs, const struct config *cfg, struct acct *as,
                                 size_t n, bool by_id, bool by_domain, cJSON *found)
{
    size_t next_id = by_id ? 0 : n, next_domain = 0;
    enum err rc = ERR_OK;
    for (;;) {
        cJSON *req = cJSON_CreateObject();
        cJSON_AddArrayToObject(req, "filterGroups");
        cJSON *props = cJSON_AddArrayToObject(req, "properties");
        cJSON_AddItemToArray(props, cJSON_CreateString(cfg->hs_account_id_property));
        cJSON_AddItemToArray(props, cJSON_CreateString("domain"));
        cJSON_AddNumberToObject(req, "limit", 200);
        size_t terms = 0;
        for (; next_id < n && add_term(req, cfg->hs_account_id_property, as[next_id].id); next_id++)
            terms++;
        for (; by_domain && next_id == n && next_domain < n; next_domain++) {
            if (!wants_domain(&as[next_domain]))
                continue;
            if (!add_term(req, "domain", as[next_domain].domain))
                break;
            terms++;
        }
        if (terms > 0)
            rc = search_all(hs, req, found);
        cJSON_Delete(req);
        if (terms == 0 || rc != ERR_OK)
            return rc;
        match_ids(cfg, found, as, n);
    }
}

/* A company with the account's domain holding no other account, one company per account. */
static void match_domains(const struct config *cfg, const cJSON *found, struct acct *as, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (as[i].company || as[i].is_left || !as[i].domain)
            continue;
        if (strlen(as[i].domain) > DOMAIN_MAX_LEN) {
            as[i].is_left = true; /* searched alone, by hs_companies_find_or_create */
            continue;
        }
        const cJSON *c;
        cJSON_ArrayForEach(c, found)
        {
            const cJSON *props = cJSON_GetObjectItemCaseSensitive(c, "properties");
            const char *held = str(props, cfg->hs_account_id_property);
            const char *domain = str(props, "domain");
            if (as[i].company || !str(c, "id") || !domain ||
                strcasecmp(domain, as[i].domain) != 0 || (held && !sf_id_equal(held, as[i].id)))
                continue;
            bool is_taken = false;
            for (size_t j = 0; j < n; j++)
                is_taken |= as[j].company && strcmp(as[j].company, str(c, "id")) == 0;
            if (is_taken)
                continue;
            as[i].company = xstrdup(str(c, "id"));
            as[i].is_matched = true;
        }
    }
}

/* Stores the account ids on the companies found by domain (one batch update). A company
 * HubSpot refuses to update is not taken: the account is left to the one-by-one path. */
static enum err claim_matched(struct hs_client *hs, const struct config *cfg, struct acct *as,
                              size_t n)
{
    cJSON *inputs = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        if (!as[i].is_matched)
            continue;
        cJSON *in = cJSON_CreateObject();
        cJSON_AddStringToObject(in, "id", as[i].company);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(in, "properties"),
                                cfg->hs_account_id_property, as[i].id);
        cJSON_AddItemToArray(inputs, in);
    }
    enum err rc = ERR_OK;
    if (cJSON_GetArraySize(inputs) > 0) {
        struct hs_batch_result res = {0};
        rc = hs_batch_update(hs, "companies", inputs, &res);
        for (size_t i = 0; rc == ERR_OK && i < n; i++) {
            if (!as[i].is_matched)
                continue;
            bool is_done = false;
            const cJSON *r;
            cJSON_ArrayForEach(r, res.results) is_done |=
                str(r, "id") && strcmp(str(r, "id"), as[i].company) == 0;
            if (!is_done) {
                free(as[i].company);
                as[i].company = NULL;
                as[i].is_matched = false;
                as[i].is_left = true;
            }
        }
        hs_batch_result_clear(&res);
    }
    cJSON_Delete(inputs);
    return rc;
}

/* New companies for the accounts still without one (batch create, 100 per call), matched back
 * by their objectWriteTraceId, the account id. */
static enum err create_rest(struct hs_client *hs, const struct config *cfg, struct acct *as,
                            size_t n, bool *is_unlinked)
{
    cJSON *inputs = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        if (as[i].company || as[i].is_left)
            continue;
        cJSON *account = cJSON_Duplicate(as[i].account, true);
        if (!cJSON_IsObject(account)) {
            cJSON_Delete(account);
            account = cJSON_CreateObject();
        }
        cJSON_DeleteItemFromObject(account, "Id");
        cJSON_AddStringToObject(account, "Id", as[i].id);
        cJSON *in = cJSON_CreateObject();
        cJSON_AddItemToObject(in, "properties", hs_company_properties(cfg, account));
        cJSON_AddArrayToObject(in, "associations");
        cJSON_AddStringToObject(in, "objectWriteTraceId", as[i].id);
        cJSON_AddItemToArray(inputs, in);
        cJSON_Delete(account);
    }
    enum err rc = ERR_OK;
    if (cJSON_GetArraySize(inputs) > 0) {
        struct hs_batch_result res = {0};
        rc = hs_batch_create(hs, "companies", inputs, &res);
        const cJSON *r;
        cJSON_ArrayForEach(r, res.results)
        {
            /* Each result carries its input's objectWriteTraceId, the account id (the
             * properties returned need not include the account id property). */
            const char *held = str(r, "objectWriteTraceId");
            if (!held)
                held = str(cJSON_GetObjectItemCaseSensitive(r, "properties"),
                           cfg->hs_account_id_property);
            bool is_matched = false;
            for (size_t i = 0; rc == ERR_OK && held && str(r, "id") && i < n; i++)
                if (!as[i].company && !as[i].is_left && sf_id_equal(held, as[i].id)) {
                    as[i].company = xstrdup(str(r, "id"));
                    is_matched = true;
                }
            if (!is_matched)
                *is_unlinked = true; /* a company made that no account takes */
        }
        if (cJSON_GetArraySize(res.errors) > 0)
            log_warn("hubspot refused some companies; their accounts are tried one by one",
                     LOG_I64("refused", cJSON_GetArraySize(res.errors)));
        hs_batch_result_clear(&res);
    }
    cJSON_Delete(inputs);
    return rc;
}

enum err hs_companies_resolve_batch(struct hs_client *hs, PGconn *db, const struct config *cfg,
                                    const cJSON *accounts, const cJSON *contacts, int *resolved)
{
    size_t total = (size_t)cJSON_GetArraySize(accounts);
    struct acct *as = xcalloc(total + 1, sizeof(*as));
    size_t n = 0, locked = 0;
    enum err rc = ERR_OK;
    int linked = 0;
    for (const cJSON *a = accounts ? accounts->child : NULL; a; a = a->next)
        if (a->string && a->string[0])
            as[n++] = (struct acct){.id = a->string, .account = a};
    qsort(as, n, sizeof(*as), by_id);
    /* The locks first, in id order (two batches never wait on each other), then what another
     * worker may have linked meanwhile. */
    for (; locked < n && rc == ERR_OK; locked++) {
        char *key = xasprintf("account:%s", as[locked].id);
        rc = sync_pair_lock_wait(db, key);
        free(key);
        if (rc != ERR_OK)
            break;
    }
    size_t open = 0;
    for (size_t i = 0; rc == ERR_OK && i < n; i++) {
        struct link l = {0};
        enum err found = link_find_by_sf(db, LINK_ACCOUNT, as[i].id, &l);
        link_clear(&l);
        if (found == ERR_NOT_FOUND) {
            as[i].domain =
                cfg->company_match_domain ? hs_company_domain(str(as[i].account, "Website")) : NULL;
            as[open++] = as[i];
        } else if (found != ERR_OK) {
            rc = found;
        }
    }
    /* Before the search (which decides whose domains to search): an account whose contacts
     * are linked is left to the one-by-one path unless a company holds its id. */
    if (rc == ERR_OK)
        rc = mark_contact_accounts(db, contacts, as, open);
    cJSON *found = cJSON_CreateArray();
    if (rc == ERR_OK && open > 0)
        rc = search_companies(hs, cfg, as, open, must_search_ids(hs, db, cfg),
                              cfg->company_match_domain, found);
    if (rc == ERR_OK && cfg->company_match_domain)
        match_domains(cfg, found, as, open);
    cJSON_Delete(found);
    /* From here account ids are written: a failure may leave a company holding one unlinked,
     * which later batches must then search for (noted before the locks go). */
    bool is_written = rc == ERR_OK, is_unlinked = false;
    if (rc == ERR_OK)
        rc = claim_matched(hs, cfg, as, open);
    if (rc == ERR_OK)
        rc = create_rest(hs, cfg, as, open, &is_unlinked);
    for (size_t i = 0; rc == ERR_OK && i < open; i++) {
        if (!as[i].company)
            continue;
        rc = save_link(db, as[i].id, as[i].company);
        linked += rc == ERR_OK;
    }
    if (is_written && (rc != ERR_OK || is_unlinked))
        hs_companies_note_unlinked_write();
    /* as[] was compacted: the locks taken are released by the accounts object (all of them
     * when every lock was taken, the usual case; unlocking one not held only warns). */
    for (const cJSON *a = accounts ? accounts->child : NULL; a && locked > 0; a = a->next) {
        if (!a->string || !a->string[0])
            continue;
        char *key = xasprintf("account:%s", a->string);
        sync_pair_unlock(db, key);
        free(key);
    }
    for (size_t i = 0; i < open; i++) {
        free(as[i].domain);
        free(as[i].company);
    }
    free(as);
    if (rc == ERR_OK && resolved)
        *resolved = linked;
    return rc;
}
