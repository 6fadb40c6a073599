/* fuzz_mapping.c - libFuzzer target: the mappings file (MAPPINGS_FILE) through mapping_set_new,
 * then the field lists register derives from it. Seeds: tests/fixtures/mappings/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "mapping.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = xstrndup((const char *)data, size);
    struct mapping_set *set = NULL;
    char *error = NULL;
    if (mapping_set_new(json, &set, &error) == ERR_OK) {
        for (size_t i = 0; i < mapping_set_count(set); i++)
            if (!mapping_set_field(set, i))
                abort();
        free(mapping_sf_field_list(set));
        free(mapping_hs_property_list(set));
        mapping_set_free(set);
    } else if (!error) {
        abort(); /* every refusal says why */
    }
    free(error);
    free(json);
    return 0;
}
