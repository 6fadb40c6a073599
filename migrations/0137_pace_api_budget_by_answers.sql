-- The shared API budget's log held each call at its reserved slot, and counted the window a
-- fortieth longer (250 ms of 10 s, 25 ms of search's second) for the time between a slot and
-- the call reaching HubSpot. On a loaded machine a call reaches HubSpot later than that (the
-- worker wakes late, the request waits for a core), and a later call that relied on it having
-- aged out was answered 429. Now each entry is the latest time HubSpot may have counted its
-- call: the slot plus p_in_flight_ms while the call is on its way, and the time of its answer
-- once it is answered (api_budget_answered, called after every answer), which no lateness can
-- pass. The window is then counted at HubSpot's own length. A call depends on the entry a
-- window before it, long answered in a steady stream, so the allowance only costs in a burst of
-- more calls than the window holds.
DROP FUNCTION api_budget_take(text, text, integer, integer, bigint, integer);

-- The window of row b at time t, as take and wait_ms count it: lim calls at most (the header's
-- Max wins when lower, a Free or Starter account, an OAuth app; the setting is the ceiling; one
-- call in twenty, at least one, is kept free for other programs using the same app), win long,
-- and the entries in it, oldest first.
CREATE FUNCTION api_budget_window(b api_budget, p_limit integer, p_interval_ms integer,
                                  t timestamptz, OUT lim integer, OUT win interval,
                                  OUT recent timestamptz[])
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    lim := least(p_limit, coalesce(b.limit_max, p_limit));
    lim := greatest(1, lim - greatest(lim / 20, CASE WHEN lim > 1 THEN 1 ELSE 0 END));
    win := coalesce(b.interval_ms, p_interval_ms) * interval '1 millisecond';
    recent := ARRAY(SELECT c FROM unnest(b.calls) AS c WHERE c > t - win ORDER BY c);
END $$;

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
    recent  timestamptz[];
    n       integer;
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
    SELECT * INTO lim, win, recent FROM api_budget_window(b, p_limit, p_interval_ms, t);
    n := coalesce(array_length(recent, 1), 0);
    -- With the window full, the slot comes when the call lim places back ages out.
    slot := CASE WHEN n < lim THEN t ELSE recent[n - lim + 1] + win END;
    slot := greatest(slot, b.next_at, t);
    wait_ms := ceil(extract(epoch FROM slot - t) * 1000);
    IF wait_ms > p_max_wait_ms THEN
        refused := 'burst';
        RETURN;
    END IF;
    entry := slot + p_in_flight_ms * interval '1 millisecond';
    UPDATE api_budget SET calls = ARRAY(SELECT c FROM unnest(recent || entry) AS c ORDER BY c)
     WHERE api = p_api;
    IF p_daily_api IS NOT NULL THEN
        UPDATE api_budget SET day = today, day_used = used + 1 WHERE api = p_daily_api;
    END IF;
    day_left := day_left - 1;
END $$;

-- After the answer to a call taken with api_budget_take: its entry (p_entry, as take returned
-- it) becomes now, a time HubSpot counted the call before. Nothing when the entry is gone.
CREATE FUNCTION api_budget_answered(p_api text, p_entry timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cs timestamptz[];
    i  integer;
BEGIN
    SELECT calls INTO cs FROM api_budget WHERE api = p_api FOR UPDATE;
    i := array_position(cs, p_entry);
    IF i IS NULL THEN
        RETURN;
    END IF;
    cs[i] := clock_timestamp();
    UPDATE api_budget SET calls = ARRAY(SELECT c FROM unnest(cs) AS c ORDER BY c)
     WHERE api = p_api;
END $$;

-- As api_budget_take counts the window now (migration 0061 counted it a fortieth longer).
CREATE OR REPLACE FUNCTION api_budget_wait_ms(p_api text, p_limit integer, p_interval_ms integer,
                                              p_free integer) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    b       api_budget%ROWTYPE;
    t       timestamptz := clock_timestamp();
    lim     integer;
    win     interval;
    recent  timestamptz[];
    n       integer;
    need    integer;
    slot    timestamptz;
BEGIN
    SELECT * INTO b FROM api_budget WHERE api = p_api;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    SELECT * INTO lim, win, recent FROM api_budget_window(b, p_limit, p_interval_ms, t);
    n := coalesce(array_length(recent, 1), 0);
    need := greatest(1, least(p_free, lim));
    -- need free slots once the call need places past the limit has aged out.
    slot := CASE WHEN lim - n >= need THEN t ELSE recent[n - lim + need] + win END;
    slot := greatest(slot, b.next_at, t);
    RETURN ceil(extract(epoch FROM slot - t) * 1000);
END $$;
