-- Large webhook bodies in the inbox compressed with lz4 and kept in the row (issue 13). A
-- 100-event HubSpot body (about 23 KB of JSON) was stored out of line uncompressed: a dozen
-- TOAST rows with their index entries and 23 KB of WAL on the acknowledgement path. lz4 (where
-- the server is built with it) makes it about a fifth of that, which fits in the row. Bodies
-- under toast_tuple_target (8160 bytes, every 10-event body) are still stored as they are,
-- never compressed. The ack path and the splitter read and write the column as before.
ALTER TABLE ingest_inbox ALTER COLUMN body SET STORAGE MAIN;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE ingest_inbox ALTER COLUMN body SET COMPRESSION lz4;
    END IF;
END
$$;
