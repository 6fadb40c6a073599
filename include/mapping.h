/* mapping.h - pure field mapping between a Salesforce Opportunity and a HubSpot deal, with
 * HubSpot's per-field sync rules. No I/O, no globals; depends only on cJSON, util and err. */
#ifndef SVC_MAPPING_H
#define SVC_MAPPING_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "compiler.h"
#include "err.h"

/* Sync rules as HubSpot's Salesforce integration defines them (reference hubspot.md 1.3). */
enum mapping_rule {
    MAPPING_RULE_TWO_WAY,                        /* "two_way": the most recent change wins */
    MAPPING_RULE_PREFER_SALESFORCE_UNLESS_BLANK, /* HubSpot writes only into an empty field */
    MAPPING_RULE_ALWAYS_SALESFORCE,              /* HubSpot never writes to Salesforce */
    MAPPING_RULE_NONE,                           /* "none": nothing passes either way */
};

/* How a value is converted. Standard fields have a fixed kind; a custom mapping's kind comes
 * from the HubSpot property definition when one is supplied (enumeration, number, date,
 * datetime, bool), else PICKLIST when the file gives "values", else TEXT. */
enum mapping_kind {
    MAPPING_KIND_TEXT,
    MAPPING_KIND_NUMBER,
    MAPPING_KIND_DATE,     /* Salesforce date <-> HubSpot date or datetime (midnight UTC) */
    MAPPING_KIND_DATETIME, /* Salesforce datetime <-> HubSpot datetime */
    MAPPING_KIND_BOOL,
    MAPPING_KIND_PICKLIST,      /* Salesforce picklist <-> HubSpot enumeration option */
    MAPPING_KIND_MULTIPICKLIST, /* Salesforce multi-select picklist <-> HubSpot checkboxes
                                 * (enumeration, fieldType "checkbox"); ';'-separated both sides */
    MAPPING_KIND_OWNER,         /* OwnerId <-> hubspot_owner_id through the owner lookup */
    MAPPING_KIND_STAGE,         /* StageName <-> dealstage through the caller's stage map */
};

enum mapping_direction {
    MAPPING_SF_TO_HS, /* a Salesforce change is written to HubSpot */
    MAPPING_HS_TO_SF, /* a HubSpot change is written to Salesforce */
};

/* One field pair. Strings are owned by the set. */
struct mapping_field {
    char *sf_field;
    char *hs_property;
    enum mapping_rule rule;
    enum mapping_kind kind; /* PICKLIST/TEXT for custom fields until refined per call */
    bool is_standard;
    cJSON *values; /* picklist map {"SF value":"hs option"} (StageName: {"SF stage":"hs stage
                    * id or label"}), or NULL */
};

/* The standard mappings plus the custom ones from MAPPINGS_FILE. Immutable once built, so one
 * set may be shared read-only by every worker thread. */
struct mapping_set;

/* Parses the mappings file text: [{"salesforce":"Field__c","hubspot":"prop",
 * "rule":"two_way|prefer_salesforce_unless_blank|always_salesforce|none",
 * "values":{"SF value":"hs option"}}]. json may be NULL (standard mappings only). An entry naming
 * a standard pair overrides that pair's rule (OwnerId stays two_way, as in HubSpot).
 * On ERR_OK *out is the new set (free with mapping_set_free). On ERR_CONFIG *error receives
 * every problem found, "; "-separated ("mappings[2]: unknown rule \"sometimes\""), caller frees.
 * Thread-safe. */
enum err mapping_set_new(const char *json, struct mapping_set **out, char **error) WARN_UNUSED;
/* NULL is a no-op. */
void mapping_set_free(struct mapping_set *set);

/* Number of field pairs and the i-th pair (borrowed, valid while the set lives). */
size_t mapping_set_count(const struct mapping_set *set);
const struct mapping_field *mapping_set_field(const struct mapping_set *set, size_t i);

/* The mappings file's "values" of the pair of Salesforce field sf_field, or NULL (borrowed,
 * valid while the set lives). For StageName they name HubSpot stages by id or label. */
const cJSON *mapping_values_of(const struct mapping_set *set, const char *sf_field);

/* Comma-separated Salesforce fields / HubSpot properties the set reads (rule "none" excluded):
 * what to SELECT before calling mapping_apply. Caller frees. Thread-safe. */
char *mapping_sf_field_list(const struct mapping_set *set);
char *mapping_hs_property_list(const struct mapping_set *set);

/* Owner translation. dir SF_TO_HS: id is a Salesforce user id, *out a HubSpot owner id; HS_TO_SF
 * the reverse. Return ERR_OK with *out (caller of the callback frees), ERR_NOT_FOUND when there
 * is no match (the field is skipped with a reason), any other error aborts mapping_apply. */
typedef enum err (*mapping_owner_fn)(void *arg, enum mapping_direction dir, const char *id,
                                     char **out);

/* Everything mapping_apply needs besides the records. All pointers borrowed; any may be NULL. */
struct mapping_context {
    const cJSON *stage_map;     /* {"SF StageName":"hs stage id"}; reverse lookup for HS->SF */
    const char *hs_pipeline_id; /* when set, SF->HS stage changes also write "pipeline" */
    const cJSON *owner_map;     /* {"SF user id":"hs owner id"}; consulted before owner_fn */
    mapping_owner_fn owner_fn;
    void *owner_arg;
    const cJSON *hs_property_defs; /* array of HubSpot property definitions
                                    * ({"name","type","fieldType","options":[{label,value}]}) as
                                    * GET /crm/v3/properties/deals returns them in "results" */
    const cJSON *sf_describe;      /* the Opportunity describe (sf_describe.h): a value written to
                                    * a Salesforce picklist must be one of its picklistValues */
};

/* A field left out of the changes, with a fixed lowercase reason. */
struct mapping_skip {
    char *field;  /* the source-side field or property name */
    char *reason; /* e.g. "no hubspot option for value" */
};

struct mapping_result {
    cJSON *changes; /* object: SF_TO_HS -> HubSpot properties (all strings, "" clears);
                     * HS_TO_SF -> Salesforce fields (null clears) */
    struct mapping_skip *skips;
    size_t skip_count;
};

/* Applies every mapping in direction dir. sf_record is the Salesforce record as REST returns it
 * (or the outbound message fields as strings), hs_properties the deal's "properties" object; the
 * side being written may be NULL when the record does not exist yet. Only values that differ
 * from the target's current value are written. Rules: TWO_WAY and PREFER_SALESFORCE_UNLESS_BLANK
 * and ALWAYS_SALESFORCE all carry Salesforce values (blanks included, which clear) to HubSpot;
 * toward Salesforce TWO_WAY carries HubSpot values (blank clears), PREFER_SALESFORCE_UNLESS_BLANK
 * only fills an empty Salesforce field, ALWAYS_SALESFORCE and NONE never write.
 * A value that cannot be translated (no picklist option, no stage or owner match, not a number
 * or date) is skipped and recorded in out->skips; the rest still maps.
 * On ERR_OK *out is filled (release with mapping_result_clear); on error (ERR_INVALID for a
 * non-object record, or the owner callback's error) *out is untouched. Thread-safe. */
enum err mapping_apply(const struct mapping_set *set, const struct mapping_context *ctx,
                       enum mapping_direction dir, const cJSON *sf_record,
                       const cJSON *hs_properties, struct mapping_result *out) WARN_UNUSED;
/* Frees the changes and skips. NULL is a no-op. */
void mapping_result_clear(struct mapping_result *r);
/* Whether a value was left out for want of a HubSpot option, in either direction: the property
 * definitions it was mapped against may predate an option a user has just added. Pure. */
bool mapping_result_lacks_hs_option(const struct mapping_result *r);

/* Whether a Salesforce field of describe type sf_type and a HubSpot property of type hs_type
 * and fieldType hs_field_type (may be NULL) can hold each other's values, following HubSpot's
 * table of compatible types (reference hubspot.md 1.3). NULL when they can, else why not (a
 * fixed lowercase phrase). Pure. */
const char *mapping_type_mismatch(const char *sf_type, const char *hs_type,
                                  const char *hs_field_type);

/* Rule name as in the mappings file, and the reverse (false when unknown). Pure. */
const char *mapping_rule_name(enum mapping_rule rule);
bool mapping_rule_parse(const char *name, enum mapping_rule *out);

/* Normalises a decimal number for HubSpot: JSON numbers use the shortest text that reads back
 * to the same double; decimal strings keep every digit, drop trailing fractional zeros and a
 * bare point ("120000.0" -> "120000", "0.50" -> "0.5"). Caller frees; NULL when v is not a
 * number. Pure. */
char *mapping_number_text(const cJSON *v);

#endif
