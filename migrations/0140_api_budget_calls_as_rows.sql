-- The shared API budget's log of calls becomes rows: one row a call (api_budget_call), written
-- once by its take, moved once by its answer, deleted once it has aged out of the window. The
-- log was an array in the budget's row, and every take and every answer rewrote all of it (about
-- 1,000 entries at 100 calls a second with a higher limit: a TOASTed value, sorted and written
-- again twice a call, under the row's lock that every worker waits for). In the end-to-end
-- benchmark the two statements were the largest statement time of a run (4 to 9 ms each on
-- average, 105 s of a 70-second run); as rows, a take reads the one entry it needs through an
-- index. The budget's row is still locked by take and answer alike (in that order with the day's
-- row), so a take sees every answer made before it: the pacing is the same as before.
CREATE TABLE api_budget_call (
    api text        NOT NULL,
    -- the latest time HubSpot may have counted the call: its slot plus the time in flight, then
    -- the time of its answer (migration 0137)
    at  timestamptz NOT NULL
);
CREATE INDEX api_budget_call_api_at ON api_budget_call (api, at);
INSERT INTO api_budget_call (api, at) SELECT b.api, c FROM api_budget b, unnest(b.calls) AS c;

DROP FUNCTION api_budget_take(text, text, integer, integer, bigint, integer, integer);
DROP FUNCTION api_budget_answered(text, timestamptz);
DROP FUNCTION api_budget_wait_ms(text, integer, integer, integer);
DROP FUNCTION api_budget_window(api_budget, integer, integer, timestamptz);
ALTER TABLE api_budget DROP COLUMN calls;

-- The window of row b: lim calls at most (the header's Max wins when lower, a Free or Starter
-- account, an OAuth app; the setting is the ceiling; one call in twenty, at least one, is kept
-- free for other programs using the same app), win long.
CREATE FUNCTION api_budget_window(b api_budget, p_limit integer, p_interval_ms integer,
                                  OUT lim integer, OUT win interval)
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    lim := least(p_limit, coalesce(b.limit_max, p_limit));
    lim := greatest(1, lim - greatest(lim / 20, CASE WHEN lim > 1 THEN 1 ELSE 0 END));
    win := coalesce(b.interval_ms, p_interval_ms) * interval '1 millisecond';
END $$;

-- The k-th newest entry of p_api's window at t (k from 1), NULL when the window holds fewer.
CREATE FUNCTION api_budget_kth_newest(p_api text, t timestamptz, win interval, k integer)
RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT at FROM api_budget_call WHERE api = p_api AND at > t - win
     ORDER BY at DESC OFFSET greatest(k - 1, 0) LIMIT 1
$$;

-- Takes one call from the budget of p_api (and one from the day of p_daily_api): returns at
-- once with wait_ms = how long the caller must wait before sending (the slot is reserved, and
-- entry is its log entry, which the caller passes to api_budget_answered), or with refused =
-- 'burst' (the wait would exceed p_max_wait_ms; nothing reserved) or 'daily' (the day is used
-- up; wait_ms = until midnight UTC). Rows are locked in a fixed order (p_api, then
-- p_daily_api), so concurrent callers never deadlock.
CREATE FUNCTION api_budget_take(p_api text, p_daily_api text, p_limit integer,
                                p_interval_ms integer, p_daily_limit bigint,
                                p_max_wait_ms integer, p_in_flight_ms integer,
                                OUT wait_ms bigint, OUT refused text, OUT day_left bigint,
                                OUT entry timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    b       api_budget%ROWTYPE;
    d       api_budget%ROWTYPE;
    t       timestamptz;
    lim     integer;
    win     interval;
    back    timestamptz;
    slot    timestamptz;
    today   date;
    used    bigint;
    daily   bigint;
BEGIN
    SELECT * INTO b FROM api_budget WHERE api = p_api FOR UPDATE;
    IF p_daily_api IS NOT NULL AND p_daily_api <> p_api THEN
        SELECT * INTO d FROM api_budget WHERE api = p_daily_api FOR UPDATE;
    ELSE
        d := b;
    END IF;
    t := clock_timestamp();
    today := (t AT TIME ZONE 'UTC')::date;
    used := CASE WHEN d.day = today THEN d.day_used ELSE 0 END;
    daily := CASE WHEN p_daily_limit > 0 AND d.daily_limit IS NOT NULL
                  THEN least(p_daily_limit, d.daily_limit)
                  WHEN p_daily_limit > 0 THEN p_daily_limit
                  ELSE coalesce(d.daily_limit, 250000) END;
    day_left := greatest(daily - used, 0);
    IF used >= daily THEN
        refused := 'daily';
        wait_ms := ceil(extract(epoch FROM (today + 1)::timestamp - (t AT TIME ZONE 'UTC'))
                        * 1000);
        RETURN;
    END IF;
    SELECT * INTO lim, win FROM api_budget_window(b, p_limit, p_interval_ms);
    -- With the window full, the slot comes when the call lim places back ages out.
    back := api_budget_kth_newest(p_api, t, win, lim);
    slot := CASE WHEN back IS NULL THEN t ELSE back + win END;
    slot := greatest(slot, b.next_at, t);
    wait_ms := ceil(extract(epoch FROM slot - t) * 1000);
    IF wait_ms > p_max_wait_ms THEN
        refused := 'burst';
        RETURN;
    END IF;
    entry := slot + p_in_flight_ms * interval '1 millisecond';
    DELETE FROM api_budget_call WHERE api = p_api AND at <= t - win;
    INSERT INTO api_budget_call (api, at) VALUES (p_api, entry);
    IF p_daily_api IS NOT NULL THEN
        UPDATE api_budget SET day = today, day_used = used + 1 WHERE api = p_daily_api;
    END IF;
    day_left := day_left - 1;
END $$;

-- After the answer to a call taken with api_budget_take: its entry (p_entry, as take returned
-- it) becomes now, a time HubSpot counted the call before. Nothing when the entry is gone (aged
-- out). Entries of the same time are alike: any one of them is moved.
CREATE FUNCTION api_budget_answered(p_api text, p_entry timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM api_budget WHERE api = p_api FOR UPDATE;
    UPDATE api_budget_call SET at = clock_timestamp()
     WHERE ctid = (SELECT ctid FROM api_budget_call WHERE api = p_api AND at = p_entry LIMIT 1);
END $$;

-- How long until the window of p_api has p_free free calls (at least one, at most the window).
CREATE FUNCTION api_budget_wait_ms(p_api text, p_limit integer, p_interval_ms integer,
                                   p_free integer) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    b       api_budget%ROWTYPE;
    t       timestamptz := clock_timestamp();
    lim     integer;
    win     interval;
    need    integer;
    back    timestamptz;
    slot    timestamptz;
BEGIN
    SELECT * INTO b FROM api_budget WHERE api = p_api;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    SELECT * INTO lim, win FROM api_budget_window(b, p_limit, p_interval_ms);
    need := greatest(1, least(p_free, lim));
    -- need free slots once the call need places past the limit has aged out.
    back := api_budget_kth_newest(p_api, t, win, lim - need + 1);
    slot := CASE WHEN back IS NULL THEN t ELSE back + win END;
    slot := greatest(slot, b.next_at, t);
    RETURN ceil(extract(epoch FROM slot - t) * 1000);
END $$;
