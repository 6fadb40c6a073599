/* qtest.c - fresh migrated databases and one-line pushes for queue/worker tests. */
#include "qtest.h"

#include <check.h>

#include "itest.h"
#include "migrate.h"
#include "queue.h"

char *qtest_db(const char *prefix, PGconn **db)
{
    char *url = itest_db_create(prefix);
    *db = itest_db_connect(url);
    int applied = 0;
    ck_assert_int_eq(migrate_apply(*db, &applied), ERR_OK);
    ck_assert_int_eq(applied, migrate_embedded_count);
    return url;
}

int qtest_push(PGconn *db, const char *source, const char *dedup_key, const char *object_type,
               const char *record_id, long long occurred_ms)
{
    cJSON *payload = cJSON_CreateObject();
    cJSON_AddStringToObject(payload, "key", dedup_key);
    struct queue_event_in ev = {source,       dedup_key,   object_type, record_id,
                                "test.event", occurred_ms, payload,     QUEUE_PRIORITY_LIVE};
    size_t stored = 0;
    ck_assert_int_eq(queue_push(db, &ev, 1, &stored), ERR_OK);
    cJSON_Delete(payload);
    return (int)stored;
}
