-- How long until p_free calls could go out at once within p_api's window, without reserving
-- anything (0: now). Workers ask before they claim while HubSpot's window is full: a batch
-- claimed then would only wait for its calls, so they wait before claiming instead, and the
-- records that arrive meanwhile share the batch's calls. The window's size and margin are
-- computed as api_budget_take (migration 0020) computes them.
CREATE FUNCTION api_budget_wait_ms(p_api text, p_limit integer, p_interval_ms integer,
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
    lim := least(p_limit, coalesce(b.limit_max, p_limit));
    lim := greatest(1, lim - greatest(lim / 20, CASE WHEN lim > 1 THEN 1 ELSE 0 END));
    win := coalesce(b.interval_ms, p_interval_ms) * interval '1.025 millisecond';
    recent := ARRAY(SELECT c FROM unnest(b.calls) AS c WHERE c > t - win ORDER BY c);
    n := coalesce(array_length(recent, 1), 0);
    need := greatest(1, least(p_free, lim));
    -- need free slots once the call need places past the limit has aged out.
    slot := CASE WHEN lim - n >= need THEN t ELSE recent[n - lim + need] + win END;
    slot := greatest(slot, b.next_at, t);
    RETURN ceil(extract(epoch FROM slot - t) * 1000);
END $$;
