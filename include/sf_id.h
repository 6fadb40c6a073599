/* sf_id.h - Salesforce record ids: validation and the 15 -> 18 character form. Pure. */
#ifndef SVC_SF_ID_H
#define SVC_SF_ID_H

#include <stdbool.h>

/* True when s is a 15- or 18-character alphanumeric Salesforce id (an 18-character id must also
 * carry the right case-checksum suffix). */
bool sf_id_is_valid(const char *s);

/* Writes the 18-character form of a valid 15- or 18-character id into out (19 bytes). Ids are
 * stored and compared in this form everywhere: old API versions send 15 characters, REST
 * answers 18. Returns false (out untouched) for an invalid id. */
bool sf_id_to18(const char *s, char out[19]);

/* True when a and b name the same record (15/18 forms compared by their first 15 characters,
 * case-sensitively, as Salesforce does). */
bool sf_id_equal(const char *a, const char *b);

#endif
