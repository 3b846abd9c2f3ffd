-- Compact history: past the hot window, a person's readings live in one row per person × metric × UTC day ×
-- source (a source apiece keeps the steps rule "one source per person and hour" answerable), as arrays that
-- PostgreSQL's TOAST compresses. Dense signals (beidou_packs_by_minute) keep per-minute aggregates — sum,
-- lowest, highest, count; every other reading (blood pressure with its diastolic, sleep with its stages,
-- sparse signals, readings a platform record owns) is kept exactly. Daily features are not touched.
--
-- Readers never read `readings` or this table directly for a person's series: beidou_readings_span spans both
-- (an inlinable SQL function, so the planner still uses each table's index).

CREATE TABLE readings_packed (
  tenant_id      uuid NOT NULL,
  person_id      uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
  metric         text NOT NULL,
  day            date NOT NULL,                       -- the UTC day
  source         text NOT NULL,
  reading_count  integer NOT NULL CHECK (reading_count > 0),  -- readings packed into this row
  received_at    timestamptz NOT NULL,                -- when the newest of them was received
  -- per-minute aggregates: 1,440 slots, one per minute of the UTC day (n = 0: no reading in that minute), or
  -- empty. Fixed slots instead of a list of minutes, and sums instead of means, because they compress: runs
  -- of zeros, and whole numbers whose low bytes repeat.
  total          real[] NOT NULL DEFAULT '{}',        -- the sum of the minute's values
  lo             real[] NOT NULL DEFAULT '{}',        -- empty when no minute holds more than one reading
  hi             real[] NOT NULL DEFAULT '{}',
  n              integer[] NOT NULL DEFAULT '{}',
  offsets        smallint[] NOT NULL DEFAULT '{}',    -- utc_offset_min of the minute's first reading
  -- exact readings (parallel arrays, time ascending)
  at_ms          integer[] NOT NULL DEFAULT '{}',     -- milliseconds since the UTC day's start
  x_value        double precision[] NOT NULL DEFAULT '{}',
  x_value2       double precision[] NOT NULL DEFAULT '{}',
  x_details      jsonb[] NOT NULL DEFAULT '{}',
  x_offset       smallint[] NOT NULL DEFAULT '{}',
  x_record       bigint[] NOT NULL DEFAULT '{}',
  packed_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (person_id, metric, day, source)
);

ALTER TABLE readings_packed ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON readings_packed TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()));
-- Packing (scheduler, per tenant), repacking a day (record sync) and erasure.
GRANT SELECT, INSERT, DELETE ON readings_packed TO beidou_app;

-- Signals packed per minute; the rest keep every reading.
CREATE FUNCTION beidou_packs_by_minute(p_metric text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT p_metric IN ('heart_rate', 'steps', 'hrv_rmssd', 'hrv_sdnn', 'spo2', 'respiratory_rate')
$$;

-- A person's readings of ``p_metrics`` in [p_from, p_to) from both tiers. A hot reading is one row (lo = hi =
-- value, n = 1); a packed minute is one row at the minute's start (value = mean, n readings). Runs as the
-- caller: row-level security applies. Weighted by n, any bucket's average, lowest, highest and count are
-- the same as they were before packing.
CREATE FUNCTION beidou_readings_span(p_person uuid, p_metrics text[], p_from timestamptz, p_to timestamptz)
RETURNS TABLE ("time" timestamptz, metric text, value double precision, lo double precision, hi double precision,
               n integer, value2 double precision, details jsonb, source text, utc_offset_min smallint,
               received_at timestamptz, record_id bigint, packed boolean)
LANGUAGE sql STABLE AS $$
  SELECT r.time, r.metric, r.value, r.value, r.value, 1, r.value2, r.details, r.source, r.utc_offset_min,
         r.received_at, r.record_id, false
    FROM readings r
   WHERE r.person_id = p_person AND r.metric = ANY(p_metrics) AND r.time >= p_from AND r.time < p_to
  UNION ALL
  SELECT t.at, p.metric, m.total / m.n, coalesce(m.lo, m.total / m.n), coalesce(m.hi, m.total / m.n), m.n, NULL, NULL, p.source, m.off, p.received_at, NULL, true
    FROM readings_packed p
   CROSS JOIN LATERAL unnest(p.total, p.lo, p.hi, p.n, p.offsets) WITH ORDINALITY AS m(total, lo, hi, n, off, slot)
   CROSS JOIN LATERAL (SELECT (p.day::timestamp AT TIME ZONE 'UTC') + (m.slot - 1) * interval '1 minute' AS at) t
   WHERE p.person_id = p_person AND p.metric = ANY(p_metrics)
     AND p.day >= (p_from AT TIME ZONE 'UTC')::date AND p.day <= (p_to AT TIME ZONE 'UTC')::date
     AND m.n > 0 AND t.at >= p_from AND t.at < p_to
  UNION ALL
  SELECT t.at, p.metric, x.value, x.value, x.value, 1, x.value2, x.details, p.source, x.off, p.received_at,
         x.record, true
    FROM readings_packed p
   CROSS JOIN LATERAL unnest(p.at_ms, p.x_value, p.x_value2, p.x_details, p.x_offset, p.x_record)
                      AS x(ms, value, value2, details, off, record)
   CROSS JOIN LATERAL (SELECT (p.day::timestamp AT TIME ZONE 'UTC') + x.ms * interval '1 millisecond' AS at) t
   WHERE p.person_id = p_person AND p.metric = ANY(p_metrics)
     AND p.day >= (p_from AT TIME ZONE 'UTC')::date AND p.day <= (p_to AT TIME ZONE 'UTC')::date
     AND t.at >= p_from AND t.at < p_to
$$;
REVOKE ALL ON FUNCTION beidou_readings_span(uuid, text[], timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION beidou_readings_span(uuid, text[], timestamptz, timestamptz) TO beidou_app;

-- Steps as readers must see them, across both tiers: per person and hour one source — the first of the
-- person's ranked sources that has steps in that hour, else the one that counted the most (migration 0012's
-- rule, now weighted by how many readings a packed minute holds).
CREATE FUNCTION beidou_steps_span(p_person uuid, p_from timestamptz, p_to timestamptz)
RETURNS TABLE ("time" timestamptz, value double precision, lo double precision, hi double precision, n integer,
               source text)
LANGUAGE sql STABLE AS $$
  WITH r AS (
    SELECT s.time, s.value, s.lo, s.hi, s.n, s.source, date_trunc('hour', s.time) AS hour
      FROM beidou_readings_span(p_person, ARRAY['steps'], p_from, p_to) s),
  ranked AS (
    SELECT r.hour, r.source,
           row_number() OVER (PARTITION BY r.hour ORDER BY coalesce(array_position(sp.sources, r.source), 2147483647),
                              sum(r.value * r.n) DESC, r.source) AS k
      FROM r LEFT JOIN source_priority sp ON sp.person_id = p_person AND sp.metric = 'steps'
     GROUP BY r.hour, r.source, sp.sources)
  SELECT r.time, r.value, r.lo, r.hi, r.n, r.source FROM r JOIN ranked k ON k.hour = r.hour AND k.source = r.source
   WHERE k.k = 1
$$;
REVOKE ALL ON FUNCTION beidou_steps_span(uuid, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION beidou_steps_span(uuid, timestamptz, timestamptz) TO beidou_app;

-- The hot table's oldest chunks wholly older than the hot window (at most p_limit), each with the tenants that
-- have readings in it (tenant NULL: none left): each is packed tenant by tenant, then dropped. Row-level
-- security off, as below: a role that would see only some rows gets an error, never a partial list.
CREATE FUNCTION beidou_packable_chunks(hot_days integer, p_limit integer)
RETURNS TABLE (range_start timestamptz, range_end timestamptz, tenant_id uuid) LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = public, pg_temp SET row_security = off AS $$
  SELECT c.range_start, c.range_end, t.tenant_id
    FROM (SELECT ch.range_start, ch.range_end FROM timescaledb_information.chunks ch
           WHERE ch.hypertable_name = 'readings'
             AND ch.range_end <= now() - make_interval(days => greatest(hot_days, 1))
           ORDER BY ch.range_start LIMIT p_limit) c
    LEFT JOIN LATERAL (SELECT DISTINCT r.tenant_id FROM readings r
                        WHERE r.time >= c.range_start AND r.time < c.range_end) t ON true
   ORDER BY c.range_start, t.tenant_id
$$;
REVOKE ALL ON FUNCTION beidou_packable_chunks(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION beidou_packable_chunks(integer, integer) TO beidou_app;

-- Drops one chunk of the hot table once every tenant's rows in it were packed (and deleted). Counts with
-- row-level security off: a role that would only see some rows gets an error instead of a wrong zero.
CREATE FUNCTION beidou_drop_packed_chunk(p_start timestamptz, p_end timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET row_security = off AS $$
DECLARE left_over bigint; dropped integer;
BEGIN
  SELECT count(*) INTO left_over FROM readings WHERE time >= p_start AND time < p_end;
  IF left_over > 0 THEN
    RAISE EXCEPTION 'chunk % – % still holds % readings: not dropped', p_start, p_end, left_over;
  END IF;
  SELECT count(*) INTO dropped FROM drop_chunks('readings', older_than => p_end, newer_than => p_start);
  RETURN dropped;
END $$;
REVOKE ALL ON FUNCTION beidou_drop_packed_chunk(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION beidou_drop_packed_chunk(timestamptz, timestamptz) TO beidou_app;

-- Retention that throws history away is gone: history is packed instead (BEIDOU_HOT_DAYS).
DROP FUNCTION beidou_drop_old_readings(integer);
