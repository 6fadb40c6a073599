/* crm_match.c - Salesforce ids written back onto HubSpot contacts and companies, as HubSpot's
 * integration stores salesforcecontactid / salesforceaccountid. */
#include "crm_match.h"

#include <string.h>

#include "link.h"
#include "log.h"
#include "sf_id.h"
#include "soql.h"
#include "util.h"

const char *crm_match_prop(const cJSON *record, const char *name)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(record, "properties");
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(props, name));
    return s && s[0] ? s : NULL;
}

static enum err link_pair(PGconn *db, const char *kind, const char *sf_id, const char *hs_id,
                          const char *property)
{
    struct link l = {0};
    enum err rc = ERR_OK;
    if (link_find_by_hs(db, kind, hs_id, &l) == ERR_OK && sf_id_equal(l.sf_id, sf_id))
        goto out;
    link_clear(&l);
    l.kind = xstrdup(kind);
    l.sf_id = xstrdup(sf_id);
    l.hs_id = xstrdup(hs_id);
    l.hs_written = cJSON_CreateObject();
    cJSON_AddStringToObject(l.hs_written, property, sf_id);
    rc = link_save(db, &l);
out:
    link_clear(&l);
    return rc;
}

enum err crm_match_stamp(struct sync_ctx *ctx, PGconn *db, const char *object_type,
                         const char *kind, const char *property, const cJSON *records,
                         const cJSON *sf_ids)
{
    cJSON *inputs = cJSON_CreateArray();
    const cJSON *r;
    enum err rc = ERR_OK;
    cJSON_ArrayForEach(r, records)
    {
        const char *hs_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "id"));
        const char *sf_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sf_ids, hs_id));
        if (!hs_id || !sf_id)
            continue;
        const char *stored = crm_match_prop(r, property);
        if (!stored || !sf_id_equal(stored, sf_id)) {
            cJSON *in = cJSON_CreateObject();
            cJSON_AddStringToObject(in, "id", hs_id);
            cJSON_AddStringToObject(cJSON_AddObjectToObject(in, "properties"), property, sf_id);
            cJSON_AddItemToArray(inputs, in);
        }
        rc = link_pair(db, kind, sf_id, hs_id, property);
        if (rc != ERR_OK)
            goto out;
    }
    if (cJSON_GetArraySize(inputs) > 0) {
        struct hs_batch_result res = {0};
        rc = hs_batch_update(ctx->hs, object_type, inputs, &res);
        if (rc != ERR_OK && !err_is_transient(rc)) {
            log_warn("cannot store salesforce ids on hubspot records",
                     LOG_STR("object_type", object_type), LOG_STR("property", property),
                     LOG_STR("error", err_str(rc)));
            rc = ERR_OK;
        }
        hs_batch_result_clear(&res);
    }
out:
    cJSON_Delete(inputs);
    return rc;
}

enum err crm_match_existing(struct sf_client *sf, const char *type, const cJSON *ids, cJSON **out)
{
    cJSON *found = cJSON_CreateObject();
    cJSON *rows = NULL;
    const cJSON *c;
    enum err rc = ERR_OK;
    struct buf q;
    buf_init(&q, 0);
    buf_printf(&q, "SELECT Id FROM %s WHERE Id IN ", type);
    if (soql_append_in(&q, ids) > 0)
        rc = sf_query(sf, q.data, &rows);
    cJSON_ArrayForEach(c, rows)
    {
        char id18[19];
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "Id"));
        if (id && sf_id_to18(id, id18))
            cJSON_AddTrueToObject(found, id18);
    }
    if (rc == ERR_OK) {
        *out = found;
        found = NULL;
    }
    cJSON_Delete(found);
    cJSON_Delete(rows);
    buf_clear(&q);
    return rc;
}
