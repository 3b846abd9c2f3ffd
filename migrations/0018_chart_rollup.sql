-- Chart roll-up: per person × metric × UTC day × source, 24 hourly slots holding the sum, lowest, highest and
-- count of the readings of both tiers in that hour, so a chart of weeks or a year reads one row a day instead of
-- every reading and packed minute. The source is kept so steps can still be shown one source per person and hour
-- (0016's beidou_steps_span).
--
-- The scheduler rolls up closed hours (streaming.rollup): a tenant's roll-up covers [rolled_from, rolled_to),
-- and inside that range an hour is answered from the roll-up unless it is marked dirty: every writer that
-- changes readings of an hour before the current one (a late reading, a record's replacement or deletion, a
-- repacked day) marks it in the same transaction, and the scheduler rolls the days of marked hours up again.
-- Readers (beidou_hourly_span) take every other hour — dirty, outside the range, the window's partial first and
-- last hour — from beidou_readings_span, so what a chart shows never depends on how far the scheduler got.
-- Slots of hours outside the rolled range are always empty (count 0), so rolling more hours into a day row
-- only fills empty slots.

-- One row a day rather than an hour: the row's header and keys are paid once for 24 hours (about a fifth of
-- the bytes). The lowest and highest are kept in single precision, as packed history keeps them, and read back
-- through their shortest text: 36.6 stays 36.6, as sent.
-- A row (~650 bytes) stays below the size at which PostgreSQL would compress it (~2 KB), so its slots are fixed
-- width and plain.
CREATE TABLE readings_hourly (
  tenant_id  uuid NOT NULL,
  person_id  uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
  day        date NOT NULL,                         -- the UTC day; slot i (1–24) is its hour i - 1
  metric     text NOT NULL,
  source     text NOT NULL,
  total      double precision[] NOT NULL CHECK (cardinality(total) = 24),  -- sum of the values (a packed
                                                                         -- minute: its mean times n)
  lo         real[] NOT NULL CHECK (cardinality(lo) = 24),                 -- 0 where n is 0
  hi         real[] NOT NULL CHECK (cardinality(hi) = 24),
  n          integer[] NOT NULL CHECK (cardinality(n) = 24),               -- readings; 0: nothing that hour
  PRIMARY KEY (person_id, metric, day, source)
);

-- Hours whose readings changed after they may have been rolled up.
CREATE TABLE readings_hourly_dirty (
  tenant_id  uuid NOT NULL,
  person_id  uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
  metric     text NOT NULL,
  hour       timestamptz NOT NULL,
  marked_at  timestamptz NOT NULL DEFAULT now(),    -- updated by each mark: the update's row lock makes the
                                                    -- scheduler wait for the writer's commit (see streaming.rollup)
  PRIMARY KEY (person_id, metric, hour)
);

-- How far each tenant's roll-up reaches: every hour in [rolled_from, rolled_to) was rolled up.
CREATE TABLE readings_hourly_state (
  tenant_id    uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
  rolled_from  timestamptz NOT NULL,
  rolled_to    timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CHECK (rolled_from <= rolled_to)
);

ALTER TABLE readings_hourly ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON readings_hourly TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()));
ALTER TABLE readings_hourly_dirty ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON readings_hourly_dirty TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()));
ALTER TABLE readings_hourly_state ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON readings_hourly_state TO beidou_app
  USING (tenant_id = beidou_tenant()) WITH CHECK (tenant_id = beidou_tenant() AND beidou_person() IS NULL);

-- Rolling up (scheduler: day rows take more hours by update), erasure; marks by every writer of readings.
GRANT SELECT, INSERT, UPDATE, DELETE ON readings_hourly TO beidou_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON readings_hourly_dirty TO beidou_app;
GRANT SELECT, INSERT, UPDATE ON readings_hourly_state TO beidou_app;

-- Day rows from hourly values: the 24 slots of a day, ``p_empty`` where no hour ``p_slot`` (0–23) has a value.
CREATE FUNCTION beidou_day_slots(p_slot integer[], p_value anycompatiblearray, p_empty anycompatible)
RETURNS anycompatiblearray LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_agg(coalesce(v.value, p_empty) ORDER BY s.i)
    FROM generate_series(0, 23) s(i) LEFT JOIN unnest(p_slot, p_value) v(slot, value) ON v.slot = s.i
$$;

-- A day row's slots after more hours were rolled into it: the new value where the new count is not 0.
CREATE FUNCTION beidou_day_slots_merge(p_new_n integer[], p_new anycompatiblearray, p_old anycompatiblearray)
RETURNS anycompatiblearray LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_agg(CASE WHEN u.k > 0 THEN u.new ELSE u.old END ORDER BY u.i)
    FROM unnest(p_new_n, p_new, p_old) WITH ORDINALITY u(k, new, old, i)
$$;

-- A single-precision value as double precision through its shortest text (36.6 reads 36.6, not 36.599998),
-- what a device sent; whole numbers, most values, skip the text. Inlined into its callers.
CREATE FUNCTION beidou_real_as_sent(p real) RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN p = trunc(p) THEN p::float8 ELSE p::text::float8 END
$$;

-- A person's readings of ``p_metrics`` in [p_from, p_to), both tiers, as one row per UTC hour × metric × source
-- (what the roll-up stores). Runs as the caller: row-level security applies.
CREATE FUNCTION beidou_raw_hours(p_person uuid, p_metrics text[], p_from timestamptz, p_to timestamptz)
RETURNS TABLE (hour timestamptz, metric text, source text, total double precision, lo double precision,
               hi double precision, n bigint)
LANGUAGE sql STABLE AS $$
  SELECT date_trunc('hour', s.time, 'UTC'), s.metric, s.source, sum(s.value * s.n), min(s.lo), max(s.hi), sum(s.n)
    FROM beidou_readings_span(p_person, p_metrics, p_from, p_to) s
   GROUP BY 1, 2, 3
$$;
REVOKE ALL ON FUNCTION beidou_raw_hours(uuid, text[], timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION beidou_raw_hours(uuid, text[], timestamptz, timestamptz) TO beidou_app;

-- The same rows, for charts: clean rolled-up hours from the roll-up's day rows (their slots unnested), every other hour (dirty, outside the
-- tenant's rolled range, the partial first and last hour of the window) from beidou_raw_hours. Weighted by n,
-- any bucket of whole UTC hours gives the average, lowest, highest and count that beidou_readings_span gives.
-- PL/pgSQL rather than one SQL statement: each part is planned with its own bounds (so the hot table's chunks
-- outside them are left out at planning), a part with nothing to read is skipped, and plans are cached per
-- session. As a STABLE function every statement reads the calling query's snapshot: the state, the marks and
-- the rows agree.
CREATE FUNCTION beidou_hourly_span(p_person uuid, p_metrics text[], p_from timestamptz, p_to timestamptz)
RETURNS TABLE (hour timestamptz, metric text, source text, total double precision, lo double precision,
               hi double precision, n bigint)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  v_from timestamptz; v_to timestamptz;   -- the tenant's rolled range
  v_lo timestamptz; v_hi timestamptz;     -- the whole hours of the window inside it
  v_metrics text[]; v_hours timestamptz[];  -- marked hours among them
BEGIN
  SELECT s.rolled_from, s.rolled_to INTO v_from, v_to
    FROM people p JOIN readings_hourly_state s ON s.tenant_id = p.tenant_id WHERE p.id = p_person;
  v_lo := least(p_to, greatest(date_trunc('hour', p_from - interval '1 microsecond', 'UTC') + interval '1 hour',
                               coalesce(v_from, 'infinity')));
  v_hi := greatest(v_lo, least(date_trunc('hour', p_to, 'UTC'), coalesce(v_to, 'infinity')));
  IF v_lo < v_hi THEN
    SELECT array_agg(d.metric), array_agg(d.hour) INTO v_metrics, v_hours FROM readings_hourly_dirty d
     WHERE d.person_id = p_person AND d.metric = ANY(p_metrics) AND d.hour >= v_lo AND d.hour < v_hi;
    RETURN QUERY
      SELECT x.hour, h.metric, h.source, u.total, beidou_real_as_sent(u.lo), beidou_real_as_sent(u.hi), u.n::bigint
        FROM readings_hourly h
       CROSS JOIN LATERAL unnest(h.total, h.lo, h.hi, h.n) WITH ORDINALITY u(total, lo, hi, n, i)
       CROSS JOIN LATERAL (SELECT h.day::timestamp AT TIME ZONE 'UTC' + (u.i - 1) * interval '1 hour' AS hour) x
       WHERE h.person_id = p_person AND h.metric = ANY(p_metrics)
         AND h.day >= (v_lo AT TIME ZONE 'UTC')::date AND h.day <= ((v_hi - interval '1 hour') AT TIME ZONE 'UTC')::date
         AND u.n > 0 AND x.hour >= v_lo AND x.hour < v_hi
         AND (v_hours IS NULL OR (h.metric, x.hour) NOT IN (SELECT * FROM unnest(v_metrics, v_hours)));
  END IF;
  IF p_from < v_lo THEN
    RETURN QUERY SELECT * FROM beidou_raw_hours(p_person, p_metrics, p_from, v_lo);
  END IF;
  IF v_hi < p_to THEN
    RETURN QUERY SELECT * FROM beidou_raw_hours(p_person, p_metrics, v_hi, p_to);
  END IF;
  IF v_hours IS NOT NULL THEN
    RETURN QUERY SELECT r.* FROM unnest(v_metrics, v_hours) AS d(m, h)
                  CROSS JOIN LATERAL beidou_raw_hours(p_person, ARRAY[d.m], d.h, d.h + interval '1 hour') r;
  END IF;
END $$;
REVOKE ALL ON FUNCTION beidou_hourly_span(uuid, text[], timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION beidou_hourly_span(uuid, text[], timestamptz, timestamptz) TO beidou_app;

-- Steps by the hour as readers must see them: 0016's rule (beidou_steps_span) on hourly rows — per person and
-- hour one source, the first of the person's ranked sources with steps in that hour, else the one that
-- counted the most.
CREATE FUNCTION beidou_steps_hourly(p_person uuid, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (hour timestamptz, total double precision, lo double precision, hi double precision, n bigint,
               source text)
LANGUAGE sql STABLE AS $$
  SELECT k.hour, k.total, k.lo, k.hi, k.n, k.source
    FROM (SELECT h.*, row_number() OVER (PARTITION BY h.hour
                                         ORDER BY coalesce(array_position(sp.sources, h.source), 2147483647),
                                                  h.total DESC, h.source) AS k
            FROM beidou_hourly_span(p_person, ARRAY['steps'], p_from, p_to) h
            LEFT JOIN source_priority sp ON sp.person_id = p_person AND sp.metric = 'steps') k
   WHERE k.k = 1
$$;
REVOKE ALL ON FUNCTION beidou_steps_hourly(uuid, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION beidou_steps_hourly(uuid, timestamptz, timestamptz) TO beidou_app;
