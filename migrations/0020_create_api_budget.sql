-- Issue 9: one API budget shared by every worker of every dealsync process on this database.
-- One row per limit. 'hubspot' paces the private app's rolling 10-second window and counts the
-- day; 'hubspot_search' paces search's own per-second limit; 'salesforce' holds the org's
-- api-usage as the last Sforce-Limit-Info header said it.
CREATE TABLE api_budget (
    api            text        PRIMARY KEY,
    -- Pacing: the send times of the calls in the current window (a sliding log, as HubSpot
    -- counts), including slots reserved by workers about to send. A call goes at once while
    -- the window has room, else when enough of the window's calls have aged out, so bursts go
    -- through and no rolling window of interval_ms ever holds more than the allowed number.
    calls          timestamptz[] NOT NULL DEFAULT '{}',
    -- Not before this: set when HubSpot's headers say the window is fuller than the log knows
    -- (other programs use the same app) or a 429 still came.
    next_at        timestamptz NOT NULL DEFAULT now(),
    limit_max      integer,    -- X-HubSpot-RateLimit-Max as last seen (NULL: not yet)
    interval_ms    integer,    -- X-HubSpot-RateLimit-Interval-Milliseconds as last seen
    remaining      integer,    -- X-HubSpot-RateLimit-Remaining as last seen
    -- The day's count (UTC days; HubSpot resets at the account's midnight).
    day            date,
    day_used       bigint      NOT NULL DEFAULT 0,
    daily_limit    bigint,     -- X-HubSpot-RateLimit-Daily as last seen
    -- Salesforce: api-usage=used/max from Sforce-Limit-Info.
    usage_used     bigint,
    usage_max      bigint,
    observed_at    timestamptz
);
INSERT INTO api_budget (api) VALUES ('hubspot'), ('hubspot_search'), ('salesforce');

-- Takes one call from the budget of p_api (and one from the day of p_daily_api): returns at
-- once with wait_ms = how long the caller must wait before sending (the slot is reserved), or
-- with refused = 'burst' (the wait would exceed p_max_wait_ms; nothing reserved) or 'daily'
-- (the day is used up; wait_ms = until midnight UTC). Rows are locked in a fixed order
-- (p_api, then p_daily_api), so concurrent callers never deadlock.
CREATE FUNCTION api_budget_take(p_api text, p_daily_api text, p_limit integer,
                                p_interval_ms integer, p_daily_limit bigint,
                                p_max_wait_ms integer,
                                OUT wait_ms bigint, OUT refused text, OUT day_left bigint)
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
    -- The header's Max wins when lower (a Free or Starter account, an OAuth app); the setting
    -- is the ceiling. One call in twenty (at least one) is kept free for timing jitter and for
    -- other programs using the same app.
    lim := least(p_limit, coalesce(b.limit_max, p_limit));
    lim := greatest(1, lim - greatest(lim / 20, CASE WHEN lim > 1 THEN 1 ELSE 0 END));
    -- A call is logged when its slot is reserved and reaches HubSpot a little later, so HubSpot
    -- lets it age out a little later too: the log counts a window a fortieth longer.
    win := coalesce(b.interval_ms, p_interval_ms) * interval '1.025 millisecond';
    recent := ARRAY(SELECT c FROM unnest(b.calls) AS c WHERE c > t - win ORDER BY c);
    n := coalesce(array_length(recent, 1), 0);
    -- With the window full, the slot comes when the call lim places back ages out.
    slot := CASE WHEN n < lim THEN t ELSE recent[n - lim + 1] + win END;
    slot := greatest(slot, b.next_at, t);
    wait_ms := ceil(extract(epoch FROM slot - t) * 1000);
    IF wait_ms > p_max_wait_ms THEN
        refused := 'burst';
        RETURN;
    END IF;
    UPDATE api_budget SET calls = ARRAY(SELECT c FROM unnest(recent || slot) AS c ORDER BY c)
     WHERE api = p_api;
    IF p_daily_api IS NOT NULL THEN
        UPDATE api_budget SET day = today, day_used = used + 1 WHERE api = p_daily_api;
    END IF;
    day_left := day_left - 1;
END $$;

-- A deferred record (waiting for budget) is not a failure: the outcome says so.
ALTER TABLE sync_outcome DROP CONSTRAINT sync_outcome_outcome_check;
ALTER TABLE sync_outcome ADD CONSTRAINT sync_outcome_outcome_check
    CHECK (outcome IN ('done', 'retry', 'dead', 'skipped', 'warning', 'deferred'));

-- Live work: what the claim still takes while the Salesforce budget is short (queue_claim's
-- live_only). An event never tried before is live; automatic retries are not. Work that is not
-- live by nature (an import, a reconciliation sweep) is excluded by redefining this function in
-- the migration that adds it.
CREATE FUNCTION sync_event_is_live(e sync_event) RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT e.attempts = 0 $$;
