/* hs_contacts.c - contact role contacts -> HubSpot contacts, and their roll-ups. Each step
 * handles the whole batch in one call (search, batch read, batch create, batch update), so a
 * batch of opportunities costs the same few calls as one. */
#include "hs_contacts.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "contact_rollups.h"
#include "link.h"
#include "log.h"
#include "util.h"

/* HubSpot search: at most this many values in one IN filter (UNVERIFIED; kept small). */
#define SEARCH_IN_MAX 50

static const char *str(const cJSON *o, const char *name)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
    return s && s[0] ? s : NULL;
}

static enum err save_link(PGconn *db, const char *sf_id, const char *hs_id)
{
    struct link l = {0};
    l.kind = LINK_CONTACT;
    l.sf_id = (char *)sf_id;
    l.hs_id = (char *)hs_id;
    return link_save(db, &l);
}

/* Searches contacts whose contact id property is one of the unresolved ids. */
static enum err search_by_contact_id(struct hs_client *hs, const struct config *cfg,
                                     const cJSON *contacts, cJSON *map)
{
    cJSON *values = cJSON_CreateArray();
    const cJSON *c;
    enum err rc = ERR_OK;
    cJSON_ArrayForEach(c, contacts)
    {
        if (str(c, "Id") && !cJSON_GetObjectItemCaseSensitive(map, str(c, "Id")))
            cJSON_AddItemToArray(values, cJSON_CreateString(str(c, "Id")));
    }
    while (rc == ERR_OK && cJSON_GetArraySize(values) > 0) {
        cJSON *req = cJSON_CreateObject();
        cJSON *filter = cJSON_CreateObject();
        cJSON_AddStringToObject(filter, "propertyName", cfg->hs_contact_id_property);
        cJSON_AddStringToObject(filter, "operator", "IN");
        cJSON *chunk = cJSON_AddArrayToObject(filter, "values");
        while (cJSON_GetArraySize(chunk) < SEARCH_IN_MAX && cJSON_GetArraySize(values) > 0)
            cJSON_AddItemToArray(chunk, cJSON_DetachItemFromArray(values, 0));
        cJSON *group = cJSON_CreateObject();
        cJSON_AddItemToArray(cJSON_AddArrayToObject(group, "filters"), filter);
        cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "filterGroups"), group);
        cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "properties"),
                             cJSON_CreateString(cfg->hs_contact_id_property));
        cJSON_AddNumberToObject(req, "limit", 100);
        cJSON *results = NULL;
        char *after = NULL;
        rc = hs_search(hs, "contacts", req, NULL, &results, &after);
        const cJSON *r;
        cJSON_ArrayForEach(r, results)
        {
            const char *sf = str(cJSON_GetObjectItem(r, "properties"), cfg->hs_contact_id_property);
            if (sf && str(r, "id") && !cJSON_GetObjectItemCaseSensitive(map, sf))
                cJSON_AddStringToObject(map, sf, str(r, "id"));
        }
        free(after);
        cJSON_Delete(results);
        cJSON_Delete(req);
    }
    cJSON_Delete(values);
    return rc;
}

static enum err read_by_email(struct hs_client *hs, const cJSON *contacts, cJSON *map)
{
    const char **emails = xcalloc((size_t)cJSON_GetArraySize(contacts) + 1, sizeof(*emails));
    size_t n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, contacts)
    {
        if (str(c, "Id") && str(c, "Email") && !cJSON_GetObjectItemCaseSensitive(map, str(c, "Id")))
            emails[n++] = str(c, "Email");
    }
    enum err rc = ERR_OK;
    if (n > 0) {
        struct hs_batch_result res = {0};
        rc = hs_batch_read(hs, "contacts", "email", "email", emails, n, &res);
        const cJSON *r;
        cJSON_ArrayForEach(r, res.results)
        {
            const char *email = str(cJSON_GetObjectItem(r, "properties"), "email");
            cJSON_ArrayForEach(c, contacts)
            {
                if (email && str(c, "Email") && strcasecmp(email, str(c, "Email")) == 0 &&
                    !cJSON_GetObjectItemCaseSensitive(map, str(c, "Id")))
                    cJSON_AddStringToObject(map, str(c, "Id"), str(r, "id"));
            }
        }
        hs_batch_result_clear(&res);
    }
    free(emails);
    return rc;
}

static enum err create_missing(struct hs_client *hs, const struct config *cfg,
                               const cJSON *contacts, cJSON *map, int *created, int *refused)
{
    cJSON *inputs = cJSON_CreateArray();
    cJSON *order = cJSON_CreateArray(); /* sf ids in input order */
    const cJSON *c;
    cJSON_ArrayForEach(c, contacts)
    {
        if (!str(c, "Id") || cJSON_GetObjectItemCaseSensitive(map, str(c, "Id")))
            continue;
        cJSON *in = cJSON_CreateObject();
        cJSON *props = cJSON_AddObjectToObject(in, "properties");
        if (str(c, "Email"))
            cJSON_AddStringToObject(props, "email", str(c, "Email"));
        if (str(c, "FirstName"))
            cJSON_AddStringToObject(props, "firstname", str(c, "FirstName"));
        if (str(c, "LastName"))
            cJSON_AddStringToObject(props, "lastname", str(c, "LastName"));
        cJSON_AddStringToObject(props, cfg->hs_contact_id_property, str(c, "Id"));
        cJSON_AddItemToArray(inputs, in);
        cJSON_AddItemToArray(order, cJSON_CreateString(str(c, "Id")));
    }
    enum err rc = ERR_OK;
    if (cJSON_GetArraySize(inputs) > 0) {
        struct hs_batch_result res = {0};
        rc = hs_batch_create(hs, "contacts", inputs, &res);
        const cJSON *r;
        cJSON_ArrayForEach(r, res.results)
        {
            /* Each input carries its index as objectWriteTraceId (hs_client.h); the contact id
             * property identifies it as well. */
            const char *sf = str(cJSON_GetObjectItem(r, "properties"), cfg->hs_contact_id_property);
            const char *trace = str(r, "objectWriteTraceId");
            if (!sf && trace)
                sf = cJSON_GetStringValue(cJSON_GetArrayItem(order, atoi(trace)));
            if (sf && str(r, "id")) {
                cJSON_AddStringToObject(map, sf, str(r, "id"));
                (*created)++;
            }
        }
        *refused = cJSON_GetArraySize(res.errors);
        if (*refused > 0)
            log_warn("hubspot refused to create contacts",
                     LOG_I64("count", cJSON_GetArraySize(res.errors)));
        hs_batch_result_clear(&res);
    }
    cJSON_Delete(order);
    cJSON_Delete(inputs);
    return rc;
}

enum err hs_contacts_resolve(struct hs_client *hs, PGconn *db, const struct config *cfg,
                             const cJSON *contacts, cJSON **map, int *created)
{
    cJSON *m = cJSON_CreateObject();
    cJSON *linked = cJSON_CreateObject();
    int n_created = 0;
    enum err rc = ERR_OK;
    const cJSON *c;
    cJSON_ArrayForEach(c, contacts)
    {
        struct link l = {0};
        if (!str(c, "Id"))
            continue;
        rc = link_find_by_sf(db, LINK_CONTACT, str(c, "Id"), &l);
        if (rc == ERR_OK) {
            cJSON_AddStringToObject(m, str(c, "Id"), l.hs_id);
            cJSON_AddTrueToObject(linked, str(c, "Id"));
            link_clear(&l);
        } else if (rc != ERR_NOT_FOUND) {
            goto out;
        }
        rc = ERR_OK;
    }
    rc = search_by_contact_id(hs, cfg, contacts, m);
    if (rc == ERR_OK)
        rc = read_by_email(hs, contacts, m);
    int refused = 0;
    if (rc == ERR_OK)
        rc = create_missing(hs, cfg, contacts, m, &n_created, &refused);
    /* A refused create is most often a contact another worker or replica created meanwhile
     * (HubSpot keeps e-mails unique): it is read again by e-mail, so the deal still gets it. */
    if (rc == ERR_OK && refused > 0)
        rc = read_by_email(hs, contacts, m);
    if (rc != ERR_OK)
        goto out;
    for (cJSON *e = m->child; e && rc == ERR_OK; e = e->next)
        if (!cJSON_GetObjectItemCaseSensitive(linked, e->string))
            rc = save_link(db, e->string, e->valuestring);
out:
    cJSON_Delete(linked);
    if (rc == ERR_OK) {
        *map = m;
        *created = n_created;
    } else {
        cJSON_Delete(m);
    }
    return rc;
}

/* Roll-up changes for each contact of `contacts` ([{id, properties}]) against the properties
 * given there; contacts whose properties are updated in place with the changes. Returns the
 * batch-update inputs (possibly empty); ERR_DB on failure. */
static enum err rollup_inputs(PGconn *db, const struct config *cfg, cJSON *contacts, cJSON **inputs)
{
    cJSON *out = cJSON_CreateArray();
    cJSON *r;
    cJSON_ArrayForEach(r, contacts)
    {
        if (!str(r, "id"))
            continue;
        struct contact_rollup roll = {0};
        enum err rc = contact_rollup_load(db, str(r, "id"), &roll);
        if (rc != ERR_OK) {
            cJSON_Delete(out);
            return rc;
        }
        cJSON *props = cJSON_GetObjectItemCaseSensitive(r, "properties");
        if (!props)
            props = cJSON_AddObjectToObject(r, "properties");
        cJSON *changes = contact_rollup_changes(cfg, &roll, props);
        contact_rollup_clear(&roll);
        if (cJSON_GetArraySize(changes) == 0) {
            cJSON_Delete(changes);
            continue;
        }
        for (const cJSON *c = changes->child; c; c = c->next) {
            cJSON_DeleteItemFromObjectCaseSensitive(props, c->string);
            cJSON_AddItemToObject(props, c->string, cJSON_Duplicate(c, true));
        }
        cJSON *in = cJSON_CreateObject();
        cJSON_AddStringToObject(in, "id", str(r, "id"));
        cJSON_AddItemToObject(in, "properties", changes);
        cJSON_AddItemToArray(out, in);
    }
    *inputs = out;
    return ERR_OK;
}

/* Roll-ups depend on every deal of a contact, and workers on different opportunities of the
 * same contact may compute them at once from different moments of synced_deal. So after a
 * write the roll-ups are computed again from the table: one computed before another worker's
 * change committed differs, and is written again. Each round reads after the previous write,
 * so the last write reflects the table as it now is. */
#define ROLLUP_ROUNDS 3

enum err hs_contacts_update_rollups(struct hs_client *hs, PGconn *db, const struct config *cfg,
                                    const cJSON *hs_ids, int *updated)
{
    size_t n = (size_t)cJSON_GetArraySize(hs_ids);
    if (n == 0) {
        *updated = 0;
        return ERR_OK;
    }
    const char **ids = xcalloc(n, sizeof(*ids));
    size_t k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, hs_ids) if (cJSON_IsString(it)) ids[k++] = it->valuestring;
    char *props = contact_rollup_property_list(cfg);
    struct hs_batch_result res = {0};
    int written = 0;
    enum err rc = hs_batch_read(hs, "contacts", NULL, props, ids, k, &res);
    for (int round = 0; rc == ERR_OK && round < ROLLUP_ROUNDS; round++) {
        cJSON *inputs = NULL;
        rc = rollup_inputs(db, cfg, res.results, &inputs);
        if (rc == ERR_OK && cJSON_GetArraySize(inputs) == 0) {
            cJSON_Delete(inputs);
            break;
        }
        struct hs_batch_result wres = {0};
        if (rc == ERR_OK)
            rc = hs_batch_update(hs, "contacts", inputs, &wres);
        if (rc == ERR_OK)
            written += cJSON_GetArraySize(wres.results);
        hs_batch_result_clear(&wres);
        cJSON_Delete(inputs);
    }
    if (rc == ERR_OK)
        *updated = written;
    hs_batch_result_clear(&res);
    free(props);
    free(ids);
    return rc;
}
