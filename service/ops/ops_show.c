/* ops_show.c - `dealsync show opportunity|deal ID`: the opportunity and its deal side by side,
 * read live from both CRMs, with the stage, record type and pipeline by label (not by id), the
 * owner by e-mail, and the link dealsync keeps between them. Changes nothing. */
#include "ops_show.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "db.h"
#include "hs_client.h"
#include "http_client.h"
#include "link.h"
#include "sf_client.h"
#include "sf_id.h"
#include "sync.h"
#include "util.h"

#define EX_USAGE 64

static const char *s(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The opportunity with its labels, or NULL (why in *why). */
static cJSON *read_opportunity(const struct config *cfg, struct sf_client *sf, const char *id,
                               const char **why)
{
    if (!sf_id_is_valid(id)) {
        *why = "not a Salesforce id";
        return NULL;
    }
    char *soql = xasprintf("SELECT Id, Name, StageName, Amount, CloseDate, Owner.Email, "
                           "Account.Name, RecordTypeId, RecordType.Name, LastModifiedDate, %s "
                           "FROM Opportunity WHERE Id = '%s'",
                           cfg->sf_deal_id_field, id);
    cJSON *rows = NULL;
    enum err rc = sf_query(sf, soql, &rows);
    free(soql);
    if (rc != ERR_OK || cJSON_GetArraySize(rows) == 0) {
        *why = rc != ERR_OK ? err_str(rc) : "no such opportunity";
        cJSON_Delete(rows);
        return NULL;
    }
    cJSON *opp = cJSON_DetachItemFromArray(rows, 0);
    cJSON_Delete(rows);
    return opp;
}

static cJSON *read_deal(const struct config *cfg, struct hs_client *hs, const char *id,
                        const char **why)
{
    char *props = xasprintf("dealname,dealstage,pipeline,amount,closedate,hubspot_owner_id,"
                            "hs_lastmodifieddate,%s",
                            cfg->hs_opportunity_id_property);
    cJSON *deal = NULL;
    enum err rc = hs_object_get(hs, "deals", id, NULL, props, NULL, &deal);
    free(props);
    if (rc != ERR_OK) {
        *why = rc == ERR_NOT_FOUND ? "no such deal" : err_str(rc);
        return NULL;
    }
    return deal;
}

/* "Label (id)" of the deal's pipeline and stage from the pipelines list. */
static void deal_labels(struct hs_client *hs, const cJSON *props, char **pipeline, char **stage)
{
    const char *pid = s(props, "pipeline"), *sid = s(props, "dealstage");
    cJSON *pipelines = NULL;
    *pipeline = xasprintf("%s", pid);
    *stage = xasprintf("%s", sid);
    if (hs_pipelines_list(hs, "deals", &pipelines) != ERR_OK)
        return;
    const cJSON *p, *st;
    cJSON_ArrayForEach(p, pipelines)
    {
        if (strcmp(s(p, "id"), pid) != 0)
            continue;
        free(*pipeline);
        *pipeline = xasprintf("%s (%s)", s(p, "label"), pid);
        cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(p, "stages"))
        {
            if (strcmp(s(st, "id"), sid) == 0) {
                free(*stage);
                *stage = xasprintf("%s (%s)", s(st, "label"), sid);
            }
        }
    }
    cJSON_Delete(pipelines);
}

static char *number_text(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return xasprintf("%.2f", v->valuedouble);
    return xstrdup(cJSON_IsString(v) ? v->valuestring : "");
}

static void row(const char *label, const char *left, const char *right)
{
    printf("%-16s %-44s %s\n", label, left ? left : "", right ? right : "");
}

static void print_side_by_side(const cJSON *opp, const cJSON *deal, struct hs_client *hs,
                               const struct config *cfg)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(deal, "properties");
    char *pipeline = NULL, *stage = NULL;
    if (deal)
        deal_labels(hs, props, &pipeline, &stage);
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(opp, "RecordType");
    char *record_type = opp ? xasprintf("%s%s%s%s", s(rt, "Name"), *s(rt, "Name") ? " (" : "",
                                        s(opp, "RecordTypeId"), *s(rt, "Name") ? ")" : "")
                            : NULL;
    char *amount = opp ? number_text(cJSON_GetObjectItemCaseSensitive(opp, "Amount")) : NULL;
    char *owner_id = deal ? xasprintf("owner %s", s(props, "hubspot_owner_id")) : NULL;
    row("", "Salesforce opportunity", "HubSpot deal");
    row("id", opp ? s(opp, "Id") : "(none)", deal ? s(deal, "id") : "(none)");
    row("name", s(opp, "Name"), s(props, "dealname"));
    row("stage", s(opp, "StageName"), stage);
    row("record type", record_type, pipeline);
    row("amount", amount, s(props, "amount"));
    row("close date", s(opp, "CloseDate"), s(props, "closedate"));
    row("owner", s(cJSON_GetObjectItemCaseSensitive(opp, "Owner"), "Email"), owner_id);
    row("account", s(cJSON_GetObjectItemCaseSensitive(opp, "Account"), "Name"), "");
    row("modified", s(opp, "LastModifiedDate"), s(props, "hs_lastmodifieddate"));
    row("other side's id", s(opp, cfg->sf_deal_id_field),
        s(props, cfg->hs_opportunity_id_property));
    free(owner_id);
    free(amount);
    free(record_type);
    free(pipeline);
    free(stage);
}

int ops_show_run(const struct config *cfg, int argc, char **argv)
{
    bool is_opp = argc == 4 && strcmp(argv[2], "opportunity") == 0;
    bool is_deal = argc == 4 && strcmp(argv[2], "deal") == 0;
    if (!is_opp && !is_deal) {
        fprintf(stderr, "usage: dealsync show opportunity|deal ID\n");
        return EX_USAGE;
    }
    if (!config_has_salesforce_api(cfg) || !config_has_hubspot_api(cfg)) {
        fprintf(stderr, "dealsync show: needs the Salesforce and HubSpot credentials "
                        "(docs/configuration.md)\n");
        return 78;
    }
    const char *id = argv[3];
    struct http_client_options hopt = {0, cfg->http_timeout_ms, 0};
    struct http_client *hc = http_client_new(&hopt);
    struct sf_client *sf = NULL;
    struct hs_client *hs = NULL;
    struct hs_client_options o = {cfg->hubspot_api_base_url, cfg->hubspot_access_token};
    PGconn *db = NULL;
    struct link l = {0};
    bool has_link = false;
    cJSON *opp = NULL, *deal = NULL;
    const char *why = NULL, *other_why = NULL;
    int status = 1;
    if (sync_sf_client_new(cfg, hc, &sf) != ERR_OK || hs_client_new(&o, hc, &hs) != ERR_OK)
        goto out;
    if (db_open(cfg->database_url, &db) == ERR_OK)
        has_link = (is_opp ? link_find_by_sf(db, LINK_OPPORTUNITY, id, &l)
                           : link_find_by_hs(db, LINK_OPPORTUNITY, id, &l)) == ERR_OK;
    if (is_opp) {
        opp = read_opportunity(cfg, sf, id, &why);
        const char *deal_id = has_link ? l.hs_id : s(opp, cfg->sf_deal_id_field);
        if (opp && *deal_id)
            deal = read_deal(cfg, hs, deal_id, &other_why);
    } else {
        deal = read_deal(cfg, hs, id, &why);
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(deal, "properties");
        const char *opp_id = has_link ? l.sf_id : s(props, cfg->hs_opportunity_id_property);
        if (deal && *opp_id)
            opp = read_opportunity(cfg, sf, opp_id, &other_why);
    }
    if (!(is_opp ? opp : deal)) {
        fprintf(stderr, "dealsync show: %s %s: %s\n", argv[2], id, why ? why : "not found");
        goto out;
    }
    print_side_by_side(opp, deal, hs, cfg);
    if (has_link)
        printf("\nlinked by dealsync: opportunity %s <-> deal %s\n", l.sf_id, l.hs_id);
    else
        printf("\nnot linked by dealsync%s\n",
               (is_opp ? deal : opp) ? " (the other side found by the id stored on this one)" : "");
    if (other_why)
        printf("the %s: %s\n", is_opp ? "deal" : "opportunity", other_why);
    status = 0;
out:
    cJSON_Delete(opp);
    cJSON_Delete(deal);
    link_clear(&l);
    PQfinish(db);
    hs_client_free(hs);
    sf_client_free(sf);
    http_client_free(hc);
    return status;
}
