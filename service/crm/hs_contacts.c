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

/* Searches contacts whose contact id property is one of the unresolved ids of contacts without
 * an e-mail. One with an e-mail is found by it instead, at no call when HubSpot does not have it:
 * its create is refused when the e-mail is taken (HubSpot keeps contact e-mails unique, and
 * deduplicates by e-mail, its Salesforce integration too), and it is then read by e-mail. */
static enum err search_by_contact_id(struct hs_client *hs, const struct config *cfg,
                                     const cJSON *contacts, cJSON *map)
{
    cJSON *values = cJSON_CreateArray();
    const cJSON *c;
    enum err rc = ERR_OK;
    cJSON_ArrayForEach(c, contacts)
    {
        if (str(c, "Id") && !str(c, "Email") &&
            !cJSON_GetObjectItemCaseSensitive(map, str(c, "Id")))
            cJSON_AddItemToArray(values, cJSON_CreateString(str(c, "Id")));
    }
    while (rc == ERR_OK && cJSON_GetArraySize(values) > 0) {
        cJSON *req = cJSON_CreateObject();
        cJSON *filter = cJSON_CreateObject();
        cJSON_AddStringToObject(filter, "propertyName", cfg->hs_contact_id_property);
        cJSON_AddStringToObject(filter, "operator", "IN");
        cJSON *chunk = cJSON_AddArrayToObject(filter, "values");
        size_t chars = 0;
        while (cJSON_GetArraySize(values) > 0 &&
               hs_search_in_fits((size_t)cJSON_GetArraySize(chunk), &chars,
                                 cJSON_GetArrayItem(values, 0)->valuestring))
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

static cJSON *known_of(const struct config *cfg, const cJSON *records);

/* Reads the unresolved contacts by e-mail, with their roll-up properties and lifecycle stage:
 * what they hold is recorded as read a moment ago (contact_rollup_known_save), and their ids
 * appended to read (so their roll-ups are written without a second read). */
static enum err read_by_email(struct hs_client *hs, PGconn *db, const struct config *cfg,
                              const cJSON *contacts, cJSON *map, cJSON *read)
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
        char *rollups = contact_rollup_property_list(cfg);
        char *props = xasprintf("email,%s", rollups);
        rc = hs_batch_read(hs, "contacts", "email", props, emails, n, &res);
        free(props);
        free(rollups);
        if (rc == ERR_OK && cJSON_GetArraySize(res.results) > 0) {
            cJSON *observed = known_of(cfg, res.results);
            rc = contact_rollup_known_save(db, observed, true);
            for (const cJSON *e = observed->child; read && e; e = e->next)
                cJSON_AddItemToArray(read, cJSON_CreateString(e->string));
            cJSON_Delete(observed);
        }
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
                               const cJSON *contacts, const cJSON *create_with, cJSON *map,
                               int *refused, cJSON *made)
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
        const cJSON *more = cJSON_GetObjectItemCaseSensitive(create_with, str(c, "Id"));
        for (const cJSON *e = more ? more->child : NULL; e; e = e->next)
            if (e->string && !cJSON_GetObjectItemCaseSensitive(props, e->string))
                cJSON_AddItemToObject(props, e->string, cJSON_Duplicate(e, true));
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
                /* What it was created with is what it holds (the answer may list only
                 * HubSpot's default properties). */
                cJSON *m = cJSON_Duplicate(r, true);
                cJSON *held = cJSON_GetObjectItemCaseSensitive(m, "properties");
                if (!cJSON_IsObject(held)) {
                    cJSON_DeleteItemFromObjectCaseSensitive(m, "properties");
                    held = cJSON_AddObjectToObject(m, "properties");
                }
                const cJSON *in = NULL;
                for (int i = 0; !in && i < cJSON_GetArraySize(order); i++)
                    if (strcmp(cJSON_GetArrayItem(order, i)->valuestring, sf) == 0)
                        in = cJSON_GetArrayItem(inputs, i);
                const cJSON *given = cJSON_GetObjectItemCaseSensitive(in, "properties");
                for (const cJSON *e = given ? given->child : NULL; e; e = e->next) {
                    cJSON_DeleteItemFromObjectCaseSensitive(held, e->string);
                    cJSON_AddItemToObject(held, e->string, cJSON_Duplicate(e, true));
                }
                cJSON_AddItemToArray(made, m);
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

/* {"hs id": properties} of the roll-up properties (and lifecycle stage) in records [{id,
 * properties}]. */
static cJSON *known_of(const struct config *cfg, const cJSON *records)
{
    cJSON *out = cJSON_CreateObject();
    const cJSON *r;
    cJSON_ArrayForEach(r, records)
    {
        if (!str(r, "id") || cJSON_GetObjectItemCaseSensitive(out, str(r, "id")))
            continue;
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(r, "properties");
        cJSON *keep = cJSON_AddObjectToObject(out, str(r, "id"));
        /* strtok_r cuts the list: a fresh one per record (one list for all left the second
         * record and the next with the lifecycle stage alone, so their roll-ups were taken as
         * unknown and written again). */
        char *list = contact_rollup_property_list(cfg);
        for (char *p = list, *save = NULL, *f; (f = strtok_r(p, ",", &save)) != NULL; p = NULL) {
            const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(props, f));
            cJSON_AddStringToObject(keep, f, v ? v : "");
        }
        free(list);
    }
    return out;
}

enum err hs_contacts_resolve(struct hs_client *hs, PGconn *db, const struct config *cfg,
                             const cJSON *contacts, const cJSON *create_with, cJSON **map,
                             cJSON *created)
{
    cJSON *m = cJSON_CreateObject();
    cJSON *linked = cJSON_CreateObject();
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
    /* Created first, and read by e-mail only when HubSpot refuses a create because the e-mail
     * is taken: contacts HubSpot does not have yet (an import into a new portal) cost the
     * create alone, where a search by contact id and a read came first; a batch whose contacts
     * all exist already costs the refused create and the read. Only contacts without an e-mail
     * are searched by contact id first (nothing else can find them). */
    rc = search_by_contact_id(hs, cfg, contacts, m);
    int refused = 0;
    cJSON *made = cJSON_CreateArray();
    if (rc == ERR_OK)
        rc = create_missing(hs, cfg, contacts, create_with, m, &refused, made);
    /* What a new contact holds is known from its create: its roll-ups are then written
     * without reading it first. */
    if (rc == ERR_OK && cJSON_GetArraySize(made) > 0) {
        cJSON *observed = known_of(cfg, made);
        rc = contact_rollup_known_save(db, observed, true);
        for (const cJSON *e = observed->child; created && e; e = e->next)
            cJSON_AddItemToArray(created, cJSON_CreateString(e->string));
        cJSON_Delete(observed);
    }
    cJSON_Delete(made);
    /* A refused create is a contact HubSpot already has with that e-mail (HubSpot keeps e-mails
     * unique; a person made it, or another worker or replica meanwhile): it is read by e-mail,
     * so the deal still gets it. */
    if (rc == ERR_OK && refused > 0)
        rc = read_by_email(hs, db, cfg, contacts, m, created);
    if (rc != ERR_OK)
        goto out;
    for (cJSON *e = m->child; e && rc == ERR_OK; e = e->next)
        if (!cJSON_GetObjectItemCaseSensitive(linked, e->string))
            rc = save_link(db, e->string, e->valuestring);
out:
    cJSON_Delete(linked);
    if (rc == ERR_OK) {
        *map = m;
    } else {
        cJSON_Delete(m);
    }
    return rc;
}

/* Roll-ups depend on every deal of a contact, and workers on different opportunities of the
 * same contact may compute them at once. Each worker holds the contacts' roll-up locks while it
 * computes from synced_deal (after its own changes committed), writes and records: the last
 * worker to write a contact computed from the table as it then was, and any later change is
 * followed by its own worker's pass. What was written is recorded (contact_rollup_known), so a
 * contact is not read before each write: it is read when nothing is recorded, and before its
 * lifecycle stage moves unless that was read or created a moment ago. */
enum err hs_contacts_update_rollups(struct hs_client *hs, PGconn *db, const struct config *cfg,
                                    const cJSON *hs_ids, const cJSON *created, int *updated)
{
    cJSON *ids = cJSON_CreateArray();
    const cJSON *it;
    cJSON_ArrayForEach(it, hs_ids)
    {
        bool seen = false;
        const cJSON *d;
        cJSON_ArrayForEach(d, ids) seen |= strcmp(d->valuestring, it->valuestring) == 0;
        if (cJSON_IsString(it) && !seen)
            cJSON_AddItemToArray(ids, cJSON_CreateString(it->valuestring));
    }
    size_t n = (size_t)cJSON_GetArraySize(ids);
    *updated = 0;
    if (n == 0) {
        cJSON_Delete(ids);
        return ERR_OK;
    }
    struct contact_rollup *rolls = xcalloc(n, sizeof(*rolls));
    const char **to_read = xcalloc(n, sizeof(*to_read));
    cJSON *known = NULL, *inputs = cJSON_CreateArray(), *written = cJSON_CreateObject();
    struct hs_batch_result res = {0}, wres = {0};
    size_t k = 0, i = 0;
    enum err rc = contact_rollup_lock(db, ids);
    if (rc != ERR_OK)
        goto out;
    rc = contact_rollup_known_load(db, ids, &known);
    cJSON_ArrayForEach(it, ids)
    {
        if (rc != ERR_OK)
            break;
        rc = contact_rollup_load(db, it->valuestring, &rolls[i]);
        const cJSON *was = cJSON_GetObjectItemCaseSensitive(known, it->valuestring);
        cJSON *changes = contact_rollup_changes(cfg, &rolls[i], was);
        bool is_created = false;
        const cJSON *c;
        cJSON_ArrayForEach(c, created) is_created |= strcmp(c->valuestring, it->valuestring) == 0;
        if (!was || (cJSON_GetObjectItemCaseSensitive(changes, "lifecyclestage") && !is_created))
            to_read[k++] = it->valuestring;
        cJSON_Delete(changes);
        i++;
    }
    if (rc == ERR_OK && k > 0) {
        char *props = contact_rollup_property_list(cfg);
        rc = hs_batch_read(hs, "contacts", NULL, props, to_read, k, &res);
        free(props);
        cJSON *observed = rc == ERR_OK ? known_of(cfg, res.results) : NULL;
        if (rc == ERR_OK)
            rc = contact_rollup_known_save(db, observed, true);
        /* What was read replaces what was known; a contact read and not found (deleted in
         * HubSpot) is left out below. */
        for (size_t j = 0; j < k; j++)
            cJSON_DeleteItemFromObjectCaseSensitive(known, to_read[j]);
        for (const cJSON *e = observed ? observed->child : NULL; e; e = e->next)
            cJSON_AddItemToObject(known, e->string, cJSON_Duplicate(e, true));
        cJSON_Delete(observed);
    }
    i = 0;
    cJSON_ArrayForEach(it, ids)
    {
        const cJSON *current = cJSON_GetObjectItemCaseSensitive(known, it->valuestring);
        struct contact_rollup *roll = &rolls[i++];
        if (rc != ERR_OK || !current)
            continue;
        cJSON *changes = contact_rollup_changes(cfg, roll, current);
        if (cJSON_GetArraySize(changes) == 0) {
            cJSON_Delete(changes);
            continue;
        }
        cJSON *in = cJSON_CreateObject();
        cJSON_AddStringToObject(in, "id", it->valuestring);
        cJSON_AddItemToObject(in, "properties", changes);
        cJSON_AddItemToArray(inputs, in);
    }
    if (rc == ERR_OK && cJSON_GetArraySize(inputs) > 0)
        rc = hs_batch_update(hs, "contacts", inputs, &wres);
    if (rc == ERR_OK) {
        /* What HubSpot accepted is what it now holds. */
        const cJSON *r;
        cJSON_ArrayForEach(r, wres.results)
        {
            const cJSON *in;
            cJSON_ArrayForEach(
                in, inputs) if (str(r, "id") && strcmp(str(in, "id"), str(r, "id")) == 0 &&
                                !cJSON_GetObjectItemCaseSensitive(written, str(r, "id")))
                cJSON_AddItemToObject(
                    written, str(r, "id"),
                    cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(in, "properties"), true));
        }
        *updated = cJSON_GetArraySize(wres.results);
        rc = contact_rollup_known_save(db, written, false);
    }
out:
    contact_rollup_unlock(db, ids);
    for (size_t j = 0; j < n; j++)
        contact_rollup_clear(&rolls[j]);
    free(rolls);
    free(to_read);
    hs_batch_result_clear(&res);
    hs_batch_result_clear(&wres);
    cJSON_Delete(written);
    cJSON_Delete(inputs);
    cJSON_Delete(known);
    cJSON_Delete(ids);
    return rc;
}
