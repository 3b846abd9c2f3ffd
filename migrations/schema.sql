CREATE EXTENSION IF NOT EXISTS timescaledb WITH SCHEMA public;

COMMENT ON EXTENSION timescaledb IS 'Enables scalable inserts and complex queries for time-series data (Apache 2 Edition)';

CREATE SCHEMA beidou_chunks;

CREATE FUNCTION public.alert_timeline_outcomes() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  IF NEW.action IN ('contact', 'reach_out') THEN
    UPDATE alerts SET first_contact_at = NEW.at
     WHERE id = NEW.alert_id AND (first_contact_at IS NULL OR first_contact_at > NEW.at);
  ELSIF NEW.action = 'person_replied' THEN
    UPDATE alerts SET first_answer_at = NEW.at, first_answer = NEW.detail->>'answer'
     WHERE id = NEW.alert_id AND (first_answer_at IS NULL OR first_answer_at > NEW.at);
  ELSIF NEW.action = 'escalated' THEN
    UPDATE alerts SET escalations_fired = escalations_fired + 1 WHERE id = NEW.alert_id;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION public.beidou_consent_in_force(person uuid, data_type text, purpose text) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $_$ SELECT EXISTS (SELECT FROM beidou_consents_in_force(ARRAY[$1], $3) c WHERE c.data_type = $2) $_$;

CREATE FUNCTION public.beidou_consents_in_force(people uuid[], purpose text) RETURNS TABLE(person_id uuid, data_type text)
    LANGUAGE sql STABLE
    AS $_$ SELECT u.id, c.data_type
     FROM unnest($1) AS u(id),
          LATERAL (SELECT s.data_type
                     FROM public.consent_state s JOIN public.people p ON p.id = s.person_id
                    WHERE s.person_id = u.id AND p.id = u.id AND s.purpose IN ($2, 'monitoring') AND s.granted
                      AND (s.valid_until IS NULL OR s.valid_until > pg_catalog.now()) AND p.erased_at IS NULL
                    GROUP BY s.data_type
                   HAVING count(*) = CASE WHEN $2 = 'monitoring' THEN 1 ELSE 2 END) AS c $_$;

CREATE FUNCTION public.beidou_day_slots(p_slot integer[], p_value anycompatiblearray, p_empty anycompatible) RETURNS anycompatiblearray
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT array_agg(coalesce(v.value, p_empty) ORDER BY s.i)
    FROM generate_series(0, 23) s(i) LEFT JOIN unnest(p_slot, p_value) v(slot, value) ON v.slot = s.i
$$;

CREATE FUNCTION public.beidou_day_slots_merge(p_new_n integer[], p_new anycompatiblearray, p_old anycompatiblearray) RETURNS anycompatiblearray
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT array_agg(CASE WHEN u.k > 0 THEN u.new ELSE u.old END ORDER BY u.i)
    FROM unnest(p_new_n, p_new, p_old) WITH ORDINALITY u(k, new, old, i)
$$;

CREATE FUNCTION public.beidou_dependants() RETURNS SETOF uuid
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$ SELECT g.minor_id FROM guardianships g
    WHERE g.guardian_id = beidou_person() AND g.tenant_id = beidou_tenant() AND g.ended_at IS NULL $$;

CREATE FUNCTION public.beidou_drop_packed_chunk(p_start timestamp with time zone, p_end timestamp with time zone) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET row_security TO 'off'
    AS $$
DECLARE left_over bigint := (SELECT count(*) FROM readings_hot WHERE time >= p_start AND time < p_end);
BEGIN
  IF left_over > 0 THEN
    RAISE EXCEPTION 'chunk % – % still holds % readings: not dropped', p_start, p_end, left_over;
  END IF;
  RETURN (SELECT count(*) FROM drop_chunks('readings_hot', older_than => p_end, newer_than => p_start));
END $$;

CREATE FUNCTION public.beidou_erase_hot_readings(p_person uuid) RETURNS bigint
    LANGUAGE sql
    AS $$
  DELETE FROM readings_hot_extra WHERE person_no = (SELECT person_no FROM people WHERE id = p_person);
  WITH gone AS (DELETE FROM readings_hot WHERE person_no = (SELECT person_no FROM people WHERE id = p_person)
                RETURNING 1)
  SELECT count(*) FROM gone;
$$;

CREATE FUNCTION public.beidou_hourly_span(p_person uuid, p_metrics text[], p_from timestamp with time zone, p_to timestamp with time zone) RETURNS TABLE(hour timestamp with time zone, metric text, source text, total double precision, lo double precision, hi double precision, n bigint)
    LANGUAGE plpgsql STABLE
    AS $$
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

CREATE FUNCTION public.beidou_ingest_staged(p_tenant uuid, p_channel text) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
DECLARE staged bigint; stored bigint; oldest timestamptz; newest timestamptz;
BEGIN
  SELECT count(*), min(time), max(time) INTO staged, oldest, newest FROM ingest_stage;
  INSERT INTO sources AS s (tenant_id, person_id, source)
  SELECT DISTINCT p_tenant, st.person_id, st.source FROM ingest_stage st
   WHERE NOT EXISTS (SELECT FROM sources x WHERE x.person_id = st.person_id AND x.source = st.source
                        AND x.last_seen >= now() - interval '1 minute')
   ORDER BY 2, 3
  ON CONFLICT (person_id, source) DO UPDATE SET last_seen = now() WHERE s.last_seen < now() - interval '1 minute';
  stored := -1;
  -- The plain insert's exception block is a subtransaction: worth it from a few hundred rows (ON CONFLICT costs
  -- ~40 % more per row), not for a small group, and subtransactions slow snapshots while a long one runs.
  IF staged >= 256 THEN
    BEGIN
      INSERT INTO readings_hot (time, person_no, value, tenant_no, metric_no, source_no, utc_offset_min)
      SELECT time, person_no, value, (SELECT beidou_tenant_no()), metric_no, source_no, utc_offset_min
        FROM ingest_coded;
      GET DIAGNOSTICS stored = ROW_COUNT;
    EXCEPTION WHEN unique_violation THEN
      stored := -1;  -- a stored key: insert again without the stored ones
    END;
  END IF;
  IF stored < 0 THEN
    INSERT INTO readings_hot (time, person_no, value, tenant_no, metric_no, source_no, utc_offset_min)
    SELECT time, person_no, value, (SELECT beidou_tenant_no()), metric_no, source_no, utc_offset_min
      FROM ingest_coded
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS stored = ROW_COUNT;
  END IF;
  IF stored = staged THEN
    INSERT INTO detection_work (tenant_id, person_id, earliest_time)
    SELECT p_tenant, person_id, min(time) FROM ingest_stage GROUP BY person_id;
  ELSIF stored > 0 THEN  -- only what was stored now (received_at is this transaction's now())
    INSERT INTO detection_work (tenant_id, person_id, earliest_time)
    SELECT p_tenant, s.person_id, min(s.time)
      FROM ingest_coded s JOIN readings_hot r ON r.person_no = s.person_no AND r.metric_no = s.metric_no
                                             AND r.source_no = s.source_no AND r.time = s.time
                                             AND r.received_at = now()
     WHERE r.time BETWEEN oldest AND newest
     GROUP BY s.person_id;
  END IF;
  IF stored > 0 THEN
    PERFORM pg_notify(p_channel, p_tenant::text);
  END IF;
  RETURN stored <> staged;
END $$;

CREATE FUNCTION public.beidou_known_data_type(data_type text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$SELECT $1 = ANY ('{blood_pressure,body_temperature,glucose,heart_rate,hrv_rmssd,hrv_sdnn,respiratory_rate,resting_heart_rate,sleep,spo2,steps}'::text[])$_$;

CREATE FUNCTION public.beidou_packable_chunks(hot_days integer, p_limit integer) RETURNS TABLE(range_start timestamp with time zone, range_end timestamp with time zone, tenant_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET row_security TO 'off'
    AS $$
  WITH old AS (SELECT ch.range_start AS lo, ch.range_end AS hi FROM timescaledb_information.chunks ch
                WHERE ch.hypertable_name = 'readings_hot'
                  AND ch.range_end <= now() - make_interval(days => greatest(hot_days, 1))
                ORDER BY ch.range_start LIMIT p_limit)
  SELECT old.lo, old.hi, tn.id
    FROM old
    LEFT JOIN LATERAL (SELECT DISTINCT r.tenant_no FROM readings_hot r WHERE r.time >= old.lo AND r.time < old.hi) t
      ON true
    LEFT JOIN tenants tn ON tn.tenant_no = t.tenant_no
   ORDER BY old.lo, tn.id
$$;

CREATE FUNCTION public.beidou_packs_by_minute(p_metric text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT p_metric IN ('heart_rate', 'steps', 'hrv_rmssd', 'hrv_sdnn', 'spo2', 'respiratory_rate')
$$;

CREATE FUNCTION public.beidou_person() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('beidou.person_id', true), '')::uuid $$;

CREATE FUNCTION public.beidou_person_no() RETURNS integer
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT person_no FROM people WHERE id = beidou_person() $$;

CREATE FUNCTION public.beidou_raw_hours(p_person uuid, p_metrics text[], p_from timestamp with time zone, p_to timestamp with time zone) RETURNS TABLE(hour timestamp with time zone, metric text, source text, total double precision, lo double precision, hi double precision, n bigint)
    LANGUAGE sql STABLE
    AS $$
  SELECT date_trunc('hour', s.time, 'UTC'), s.metric, s.source, sum(s.value * s.n), min(s.lo), max(s.hi), sum(s.n)
    FROM beidou_readings_span(p_person, p_metrics, p_from, p_to) s
   GROUP BY 1, 2, 3
$$;

CREATE FUNCTION public.beidou_readings_span(p_person uuid, p_metrics text[], p_from timestamp with time zone, p_to timestamp with time zone) RETURNS TABLE("time" timestamp with time zone, metric text, value double precision, lo double precision, hi double precision, n integer, value2 double precision, details jsonb, source text, utc_offset_min smallint, received_at timestamp with time zone, record_id bigint, packed boolean)
    LANGUAGE sql STABLE
    AS $$
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

CREATE FUNCTION public.beidou_real_as_sent(p real) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT CASE WHEN p = trunc(p) THEN p::float8 ELSE p::text::float8 END
$$;

CREATE FUNCTION public.beidou_steps_hourly(p_person uuid, p_from timestamp with time zone, p_to timestamp with time zone) RETURNS TABLE(hour timestamp with time zone, total double precision, lo double precision, hi double precision, n bigint, source text)
    LANGUAGE sql STABLE
    AS $$
  SELECT k.hour, k.total, k.lo, k.hi, k.n, k.source
    FROM (SELECT h.*, row_number() OVER (PARTITION BY h.hour
                                         ORDER BY coalesce(array_position(sp.sources, h.source), 2147483647),
                                                  h.total DESC, h.source) AS k
            FROM beidou_hourly_span(p_person, ARRAY['steps'], p_from, p_to) h
            LEFT JOIN source_priority sp ON sp.person_id = p_person AND sp.metric = 'steps') k
   WHERE k.k = 1
$$;

CREATE FUNCTION public.beidou_steps_merged(p_person uuid, p_from timestamp with time zone, p_to timestamp with time zone) RETURNS TABLE("time" timestamp with time zone, value double precision, source text)
    LANGUAGE sql STABLE
    AS $$
  WITH r AS (
    SELECT r.time, r.value, r.source, date_trunc('hour', r.time) AS hour FROM readings r
     WHERE r.person_id = p_person AND r.metric = 'steps' AND r.time >= p_from AND r.time < p_to),
  ranked AS (
    SELECT r.hour, r.source,
           row_number() OVER (PARTITION BY r.hour ORDER BY coalesce(array_position(sp.sources, r.source), 2147483647),
                              sum(r.value) DESC, r.source) AS n
      FROM r LEFT JOIN source_priority sp ON sp.person_id = p_person AND sp.metric = 'steps'
     GROUP BY r.hour, r.source, sp.sources)
  SELECT r.time, r.value, r.source FROM r JOIN ranked k ON k.hour = r.hour AND k.source = r.source WHERE k.n = 1
$$;

CREATE FUNCTION public.beidou_steps_span(p_person uuid, p_from timestamp with time zone, p_to timestamp with time zone) RETURNS TABLE("time" timestamp with time zone, value double precision, lo double precision, hi double precision, n integer, source text)
    LANGUAGE sql STABLE
    AS $$
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

CREATE FUNCTION public.beidou_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('beidou.tenant_id', true), '')::uuid $$;

CREATE FUNCTION public.beidou_tenant_ids() RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$ SELECT id FROM tenants ORDER BY id $$;

CREATE FUNCTION public.beidou_tenant_no() RETURNS smallint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT tenant_no FROM tenants WHERE id = beidou_tenant() $$;

CREATE FUNCTION public.consent_due_expiries(max_rows integer) RETURNS TABLE(tenant_id uuid, person_id uuid, data_type text, purpose text, event_id bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$ SELECT s.tenant_id, s.person_id, s.data_type, s.purpose, s.event_id FROM consent_state s
    WHERE s.granted AND s.valid_until <= now() ORDER BY s.valid_until LIMIT max_rows $$;

CREATE FUNCTION public.consent_events_apply() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
  INSERT INTO consent_state AS s (tenant_id, person_id, data_type, purpose, granted, event_id, valid_until, updated_at)
  VALUES (NEW.tenant_id, NEW.person_id, NEW.data_type, NEW.purpose, NEW.action = 'grant', NEW.id,
          NEW.valid_until, NEW.created_at)
  ON CONFLICT (person_id, data_type, purpose) DO UPDATE
    SET granted = EXCLUDED.granted, event_id = EXCLUDED.event_id,
        valid_until = EXCLUDED.valid_until, updated_at = EXCLUDED.updated_at;
  RETURN NULL;
END $$;

CREATE FUNCTION public.consent_events_check_grant() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
  p record;
BEGIN
  IF NEW.action <> 'grant' THEN
    RETURN NEW;
  END IF;
  SELECT birth_date, time_zone, erased_at INTO p FROM people WHERE id = NEW.person_id;
  IF FOUND AND p.erased_at IS NOT NULL THEN
    RAISE EXCEPTION 'consent refused: this person''s data was erased' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF FOUND AND NEW.actor = 'self' AND p.birth_date IS NOT NULL
     AND p.birth_date > (now() AT TIME ZONE p.time_zone)::date - interval '14 years' THEN
    RAISE EXCEPTION 'consent refused: a person under 14 needs a guardian''s grant'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;

CREATE FUNCTION public.consent_events_webhooks() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
  queued integer;
BEGIN
  INSERT INTO notifications (tenant_id, recipient_kind, endpoint_id, purpose, order_key, payload)
  SELECT NEW.tenant_id, 'webhook', w.id, 'consent.changed', 'person:' || NEW.person_id,
         jsonb_build_object('type', 'consent.changed', 'timestamp', to_jsonb(NEW.created_at),
           'data', jsonb_build_object('person', p.external_id, 'data_type', NEW.data_type, 'purpose', NEW.purpose,
                                      'granted', NEW.action = 'grant', 'actor', NEW.actor,
                                      'valid_until', NEW.valid_until, 'consent_event_id', NEW.id))
    FROM webhook_endpoints w JOIN people p ON p.id = NEW.person_id
   WHERE w.tenant_id = NEW.tenant_id AND w.enabled AND 'consent.changed' = ANY(w.events);
  GET DIAGNOSTICS queued = ROW_COUNT;
  IF queued > 0 THEN
    PERFORM pg_notify('beidou_outbox', NEW.tenant_id::text);
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION public.data_types_refresh() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $_$
BEGIN
  EXECUTE format('CREATE OR REPLACE FUNCTION public.beidou_known_data_type(data_type text) RETURNS boolean '
                 'LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
                 format('SELECT $1 = ANY (%L::text[])', (SELECT array_agg(name ORDER BY name) FROM data_types)));
  RETURN NULL;
END $_$;

CREATE FUNCTION public.notification_deliveries_summary() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  UPDATE notifications
     SET attempted = true,
         delivery_provider = CASE WHEN NEW.ok AND NOT delivered THEN NEW.provider
                                  ELSE coalesce(delivery_provider, NEW.provider) END,
         delivered = delivered OR NEW.ok
   WHERE id = NEW.notification_id;
  RETURN NULL;
END $$;

CREATE FUNCTION public.readings_view_write() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE t_no smallint; p_no integer; m_no smallint; s_no smallint; r_no integer := 0;
        changed readings;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT code INTO m_no FROM data_types WHERE name = NEW.metric;
    IF m_no IS NULL THEN
      RAISE EXCEPTION 'unknown data type %', NEW.metric USING ERRCODE = 'check_violation';
    END IF;
    SELECT t.tenant_no, p.person_no INTO t_no, p_no
      FROM people p JOIN tenants t ON t.id = p.tenant_id WHERE p.id = NEW.person_id AND p.tenant_id = NEW.tenant_id;
    IF p_no IS NULL THEN
      RAISE EXCEPTION 'new row violates row-level security policy for table "readings"'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.record_id IS NOT NULL THEN
      SELECT record_no INTO r_no FROM records WHERE id = NEW.record_id AND person_id = NEW.person_id;
      IF r_no IS NULL THEN
        RAISE EXCEPTION 'record % is not one of this person''s records', NEW.record_id
          USING ERRCODE = 'foreign_key_violation';
      END IF;
    END IF;
    INSERT INTO sources AS s (tenant_id, person_id, source) VALUES (NEW.tenant_id, NEW.person_id, NEW.source)
      ON CONFLICT (person_id, source) DO NOTHING;
    SELECT source_no INTO s_no FROM sources WHERE person_id = NEW.person_id AND source = NEW.source;
    INSERT INTO readings_hot (time, received_at, person_no, value, tenant_no, metric_no, source_no, utc_offset_min,
                              record_no)
    VALUES (NEW.time, coalesce(NEW.received_at, now()), p_no, NEW.value, t_no, m_no, s_no, NEW.utc_offset_min, r_no);
    IF NEW.value2 IS NOT NULL OR NEW.details IS NOT NULL THEN
      INSERT INTO readings_hot_extra (time, person_no, tenant_no, metric_no, source_no, value2, details)
      VALUES (NEW.time, p_no, t_no, m_no, s_no, NEW.value2, NEW.details);
    END IF;
    changed := NEW;
  ELSE
    SELECT p.person_no, d.code, s.source_no INTO p_no, m_no, s_no
      FROM people p, data_types d, sources s
     WHERE p.id = OLD.person_id AND d.name = OLD.metric AND s.person_id = OLD.person_id AND s.source = OLD.source;
    DELETE FROM readings_hot_extra
     WHERE person_no = p_no AND metric_no = m_no AND time = OLD.time AND source_no = s_no;
    DELETE FROM readings_hot WHERE person_no = p_no AND metric_no = m_no AND time = OLD.time AND source_no = s_no;
    changed := OLD;
  END IF;
  IF changed.time < date_trunc('hour', clock_timestamp(), 'UTC') THEN
    INSERT INTO readings_hourly_dirty AS d (tenant_id, person_id, metric, hour)
    VALUES (changed.tenant_id, changed.person_id, changed.metric, date_trunc('hour', changed.time, 'UTC'))
    ON CONFLICT (person_id, metric, hour) DO UPDATE SET marked_at = now() WHERE d.marked_at < now();
  END IF;
  IF TG_OP = 'INSERT' THEN
    RETURN NEW;
  END IF;
  RETURN OLD;
END $$;

CREATE FUNCTION public.records_number() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  IF NEW.record_no IS NULL THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('beidou.records:' || NEW.person_id::text, 0));
    SELECT coalesce(max(record_no), 0) + 1 INTO NEW.record_no FROM records WHERE person_id = NEW.person_id;
  END IF;
  RETURN NEW;
END $$;

CREATE FUNCTION public.refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE FUNCTION public.refuse_renumbering() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  RAISE EXCEPTION '%.% never changes', TG_TABLE_NAME, TG_ARGV[0] USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE FUNCTION public.sources_number() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE next_no integer;
BEGIN
  IF NEW.source_no IS NULL THEN
    SELECT source_no INTO NEW.source_no FROM sources WHERE person_id = NEW.person_id AND source = NEW.source;
    IF FOUND THEN
      RETURN NEW;  -- the upsert's conflict path: the stored row keeps its number
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('beidou.sources:' || NEW.person_id::text, 0));
    SELECT coalesce(max(source_no), 0) + 1 INTO next_no FROM sources WHERE person_id = NEW.person_id;
    IF next_no > 32767 THEN
      RAISE EXCEPTION 'a person has at most 32767 sources'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'sources_per_person';
    END IF;
    NEW.source_no := next_no;
  END IF;
  RETURN NEW;
END $$;

CREATE TABLE public.alert_evidence (
    alert_id uuid NOT NULL,
    anomaly_event_id bigint NOT NULL,
    tenant_id uuid NOT NULL,
    person_id uuid NOT NULL
);

ALTER TABLE ONLY public.alert_evidence FORCE ROW LEVEL SECURITY;

CREATE TABLE public.alert_timeline (
    id bigint NOT NULL,
    alert_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    person_id uuid NOT NULL,
    at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    actor_kind text NOT NULL,
    actor_id text NOT NULL,
    action text NOT NULL,
    from_status text,
    to_status text,
    detail jsonb DEFAULT '{}'::jsonb NOT NULL,
    CONSTRAINT alert_timeline_actor_kind_check CHECK ((actor_kind = ANY (ARRAY['staff'::text, 'person'::text, 'system'::text])))
);

ALTER TABLE ONLY public.alert_timeline FORCE ROW LEVEL SECURITY;

ALTER TABLE public.alert_timeline ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.alert_timeline_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.alerts (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    tenant_id uuid NOT NULL,
    person_id uuid NOT NULL,
    kind text NOT NULL,
    feature text NOT NULL,
    metric text NOT NULL,
    tier text NOT NULL,
    severity text NOT NULL,
    severity_rank smallint NOT NULL,
    urgent boolean DEFAULT false NOT NULL,
    status text NOT NULL,
    summary text NOT NULL,
    episode_start timestamp with time zone NOT NULL,
    episode_end timestamp with time zone NOT NULL,
    opened_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    assignee_id uuid,
    claimed_at timestamp with time zone,
    resolved_at timestamp with time zone,
    resolution text,
    resolution_note text,
    consent_event_id bigint,
    policy jsonb NOT NULL,
    escalations_done text[] DEFAULT '{}'::text[] NOT NULL,
    next_escalation_at timestamp with time zone,
    first_contact_at timestamp with time zone,
    first_answer_at timestamp with time zone,
    first_answer text,
    escalations_fired integer DEFAULT 0 NOT NULL,
    reason_code text DEFAULT 'feature_change'::text NOT NULL,
    details jsonb DEFAULT '{}'::jsonb NOT NULL,
    CONSTRAINT alerts_kind_check CHECK ((kind = ANY (ARRAY['health'::text, 'data_gap'::text, 'help_request'::text]))),
    CONSTRAINT alerts_resolution_check CHECK ((resolution = ANY (ARRAY['needed_help'::text, 'member_fine'::text, 'false_alarm'::text, 'no_response'::text, 'consent_withdrawn'::text]))),
    CONSTRAINT alerts_severity_check CHECK ((severity = ANY (ARRAY['info'::text, 'low'::text, 'high'::text, 'critical'::text]))),
    CONSTRAINT alerts_status_check CHECK ((status = ANY (ARRAY['open'::text, 'claimed'::text, 'contacted'::text, 'resolved'::text]))),
    CONSTRAINT alerts_tier_check CHECK ((tier = ANY (ARRAY['watch'::text, 'alert'::text])))
);

ALTER TABLE ONLY public.alerts FORCE ROW LEVEL SECURITY;

CREATE TABLE public.anomaly_events (
    id bigint NOT NULL,
    tenant_id uuid NOT NULL,
    person_id uuid NOT NULL,
    kind text NOT NULL,
    feature text NOT NULL,
    metric text NOT NULL,
    tier text NOT NULL,
    start_time timestamp with time zone NOT NULL,
    end_time timestamp with time zone NOT NULL,
    value double precision,
    baseline double precision,
    reason text NOT NULL,
    source_received_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    handled_at timestamp with time zone,
    reason_code text DEFAULT 'feature_change'::text NOT NULL,
    details jsonb DEFAULT '{}'::jsonb NOT NULL,
    CONSTRAINT anomaly_events_kind_check CHECK ((kind = ANY (ARRAY['health'::text, 'data_gap'::text]))),
    CONSTRAINT anomaly_events_tier_check CHECK ((tier = ANY (ARRAY['watch'::text, 'alert'::text])))
);

ALTER TABLE ONLY public.anomaly_events FORCE ROW LEVEL SECURITY;

ALTER TABLE public.anomaly_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.anomaly_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.audit_log (
    id bigint NOT NULL,
    tenant_id uuid NOT NULL,
    at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    actor_kind text NOT NULL,
    actor_id text NOT NULL,
    action text NOT NULL,
    subject_person_id uuid,
    detail jsonb DEFAULT '{}'::jsonb NOT NULL,
    CONSTRAINT audit_log_actor_kind_check CHECK ((actor_kind = ANY (ARRAY['staff'::text, 'person'::text, 'system'::text, 'operator'::text])))
);

ALTER TABLE ONLY public.audit_log FORCE ROW LEVEL SECURITY;

ALTER TABLE public.audit_log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.audit_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.consent_events (
    id bigint NOT NULL,
    tenant_id uuid NOT NULL,
    person_id uuid NOT NULL,
    data_type text NOT NULL,
    purpose text NOT NULL,
    action text NOT NULL,
    notice_version text,
    app text,
    actor text DEFAULT 'self'::text NOT NULL,
    valid_until timestamp with time zone,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    actor_person_id uuid,
    reason text,
    CONSTRAINT consent_events_action_check CHECK ((action = ANY (ARRAY['grant'::text, 'withdraw'::text]))),
    CONSTRAINT consent_events_purpose_check CHECK ((purpose = ANY (ARRAY['monitoring'::text, 'outreach'::text, 'research'::text])))
);

ALTER TABLE ONLY public.consent_events FORCE ROW LEVEL SECURITY;

ALTER TABLE public.consent_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.consent_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.consent_state (
    tenant_id uuid NOT NULL,
    person_id uuid NOT NULL,
    data_type text NOT NULL,
    purpose text NOT NULL,
    granted boolean NOT NULL,
    event_id bigint NOT NULL,
    valid_until timestamp with time zone,
    updated_at timestamp with time zone NOT NULL
);

ALTER TABLE ONLY public.consent_state FORCE ROW LEVEL SECURITY;

CREATE TABLE public.data_types (
    name text NOT NULL,
    unit text NOT NULL,
    code smallint NOT NULL,
    CONSTRAINT data_types_name_check CHECK ((name ~ '^[a-z][a-z0-9_]{0,62}$'::text))
);

ALTER TABLE ONLY public.data_types FORCE ROW LEVEL SECURITY;

ALTER TABLE public.data_types ALTER COLUMN code ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.data_types_code_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.detection_work (
    id bigint NOT NULL,
    tenant_id uuid NOT NULL,
    person_id uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    earliest_time timestamp with time zone
);

ALTER TABLE ONLY public.detection_work FORCE ROW LEVEL SECURITY;

ALTER TABLE public.detection_work ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.detection_work_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.detector_checkpoints (
    person_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    window_end timestamp with time zone NOT NULL,
    state_version integer NOT NULL,
    state bytea NOT NULL,
    readings_seen bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY public.detector_checkpoints FORCE ROW LEVEL SECURITY;

CREATE TABLE public.detector_feedback (
    id bigint NOT NULL,
    tenant_id uuid NOT NULL,
    person_id uuid NOT NULL,
    feature text NOT NULL,
    kind text NOT NULL,
    until timestamp with time zone NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    applied_at timestamp with time zone,
    CONSTRAINT detector_feedback_kind_check CHECK ((kind = 'false_alarm'::text))
);

ALTER TABLE ONLY public.detector_feedback FORCE ROW LEVEL SECURITY;

ALTER TABLE public.detector_feedback ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.detector_feedback_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.detector_state (
    person_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    state_version integer NOT NULL,
    state bytea NOT NULL,
    cursor_time timestamp with time zone,
    readings_seen bigint DEFAULT 0 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    late_readings bigint DEFAULT 0 NOT NULL,
    released_until timestamp with time zone
);

ALTER TABLE ONLY public.detector_state FORCE ROW LEVEL SECURITY;

CREATE TABLE public.devices (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    tenant_id uuid NOT NULL,
    person_id uuid,
    staff_id uuid,
    provider text DEFAULT 'fcm'::text NOT NULL,
    token text NOT NULL,
    token_kind text DEFAULT 'registration'::text NOT NULL,
    platform text NOT NULL,
    app_version text,
    language text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_seen timestamp with time zone DEFAULT now() NOT NULL,
    disabled_at timestamp with time zone,
    disabled_reason text,
    CONSTRAINT devices_check CHECK (((person_id IS NULL) <> (staff_id IS NULL))),
    CONSTRAINT devices_platform_check CHECK ((platform = ANY (ARRAY['android'::text, 'ios'::text, 'web'::text]))),
    CONSTRAINT devices_provider_known CHECK ((provider = ANY (ARRAY['fcm'::text, 'gateway'::text]))),
    CONSTRAINT devices_token_check CHECK (((length(token) >= 1) AND (length(token) <= 4096))),
    CONSTRAINT devices_token_kind_check CHECK ((token_kind = ANY (ARRAY['registration'::text, 'installation'::text])))
);

ALTER TABLE ONLY public.devices FORCE ROW LEVEL SECURITY;

CREATE TABLE public.escalation_policies (
    tenant_id uuid NOT NULL,
    policy jsonb NOT NULL,
    updated_by text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY public.escalation_policies FORCE ROW LEVEL SECURITY;

CREATE TABLE public.guardianships (
    tenant_id uuid NOT NULL,
    guardian_id uuid NOT NULL,
    minor_id uuid NOT NULL,
    created_by text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    ended_at timestamp with time zone,
    CONSTRAINT guardianships_check CHECK ((guardian_id <> minor_id))
);

ALTER TABLE ONLY public.guardianships FORCE ROW LEVEL SECURITY;

CREATE TABLE public.notification_deliveries (
    id bigint NOT NULL,
    notification_id uuid NOT NULL,
    device_id uuid,
    tenant_id uuid NOT NULL,
    person_id uuid,
    attempt integer NOT NULL,
    ok boolean NOT NULL,
    provider_message_id text,
    error_code text,
    detail text,
    at timestamp with time zone DEFAULT now() NOT NULL,
    provider text
);

ALTER TABLE ONLY public.notification_deliveries FORCE ROW LEVEL SECURITY;

ALTER TABLE public.notification_deliveries ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.notification_deliveries_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.notifications (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    tenant_id uuid NOT NULL,
    recipient_kind text NOT NULL,
    person_id uuid,
    staff_id uuid,
    alert_id uuid,
    purpose text NOT NULL,
    metric text,
    critical boolean DEFAULT false NOT NULL,
    status text DEFAULT 'queued'::text NOT NULL,
    status_detail text,
    not_before timestamp with time zone DEFAULT now() NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    opened_at timestamp with time zone,
    answer text,
    answered_at timestamp with time zone,
    held_reason text,
    endpoint_id uuid,
    order_key text,
    payload jsonb,
    seq bigint NOT NULL,
    attempted boolean DEFAULT false NOT NULL,
    delivered boolean DEFAULT false NOT NULL,
    delivery_provider text,
    CONSTRAINT notifications_answer_check CHECK ((answer = ANY (ARRAY['fine'::text, 'help'::text, 'call'::text]))),
    CONSTRAINT notifications_recipient CHECK ((((recipient_kind = 'person'::text) AND (person_id IS NOT NULL) AND (staff_id IS NULL) AND (endpoint_id IS NULL)) OR ((recipient_kind = 'staff'::text) AND (staff_id IS NOT NULL) AND (person_id IS NULL) AND (endpoint_id IS NULL)) OR ((recipient_kind = 'webhook'::text) AND (endpoint_id IS NOT NULL) AND (person_id IS NULL) AND (staff_id IS NULL) AND (order_key IS NOT NULL) AND (payload IS NOT NULL)))),
    CONSTRAINT notifications_recipient_kind_check CHECK ((recipient_kind = ANY (ARRAY['person'::text, 'staff'::text, 'webhook'::text]))),
    CONSTRAINT notifications_status_check CHECK ((status = ANY (ARRAY['queued'::text, 'held'::text, 'sending'::text, 'sent'::text, 'failed'::text, 'cancelled'::text, 'opened'::text, 'answered'::text])))
);

ALTER TABLE ONLY public.notifications FORCE ROW LEVEL SECURITY;

ALTER TABLE public.notifications ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.notifications_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.people (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    tenant_id uuid NOT NULL,
    external_id text NOT NULL,
    time_zone text DEFAULT 'UTC'::text NOT NULL,
    language text DEFAULT 'en'::text NOT NULL,
    birth_date date,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    erased_at timestamp with time zone,
    quiet_start time without time zone DEFAULT '22:00:00'::time without time zone NOT NULL,
    quiet_end time without time zone DEFAULT '08:00:00'::time without time zone NOT NULL,
    person_no integer NOT NULL,
    CONSTRAINT people_external_id_check CHECK (((length(external_id) >= 1) AND (length(external_id) <= 200)))
);

ALTER TABLE ONLY public.people FORCE ROW LEVEL SECURITY;

ALTER TABLE public.people ALTER COLUMN person_no ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.people_person_no_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.readings_hot (
    "time" timestamp with time zone NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    person_no integer NOT NULL,
    value real NOT NULL,
    tenant_no smallint NOT NULL,
    metric_no smallint NOT NULL,
    source_no smallint NOT NULL,
    utc_offset_min smallint NOT NULL,
    record_no integer DEFAULT 0 NOT NULL
);

ALTER TABLE ONLY public.readings_hot FORCE ROW LEVEL SECURITY;

CREATE TABLE public.readings_hot_extra (
    "time" timestamp with time zone NOT NULL,
    person_no integer NOT NULL,
    tenant_no smallint NOT NULL,
    metric_no smallint NOT NULL,
    source_no smallint NOT NULL,
    value2 double precision,
    details jsonb
);

ALTER TABLE ONLY public.readings_hot_extra FORCE ROW LEVEL SECURITY;

CREATE TABLE public.records (
    id bigint NOT NULL,
    tenant_id uuid NOT NULL,
    person_id uuid NOT NULL,
    platform text NOT NULL,
    source_app text NOT NULL,
    native_id text NOT NULL,
    alias_id text,
    record_type text NOT NULL,
    metric text NOT NULL,
    version_time timestamp with time zone,
    version_seq bigint DEFAULT 0 NOT NULL,
    content_hash text NOT NULL,
    state text NOT NULL,
    start_time timestamp with time zone NOT NULL,
    end_time timestamp with time zone NOT NULL,
    utc_offset_min smallint NOT NULL,
    offset_inferred boolean NOT NULL,
    reading_count integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    deleted_at timestamp with time zone,
    record_no integer NOT NULL,
    CONSTRAINT records_native_id_check CHECK (((length(native_id) >= 1) AND (length(native_id) <= 255))),
    CONSTRAINT records_platform_check CHECK ((platform = ANY (ARRAY['health_connect'::text, 'healthkit'::text, 'huawei'::text, 'fhir'::text]))),
    CONSTRAINT records_record_no_check CHECK ((record_no > 0)),
    CONSTRAINT records_source_app_check CHECK (((length(source_app) >= 1) AND (length(source_app) <= 255))),
    CONSTRAINT records_state_check CHECK ((state = ANY (ARRAY['live'::text, 'deleted'::text])))
);

ALTER TABLE ONLY public.records FORCE ROW LEVEL SECURITY;

CREATE TABLE public.sources (
    tenant_id uuid NOT NULL,
    person_id uuid NOT NULL,
    source text NOT NULL,
    first_seen timestamp with time zone DEFAULT now() NOT NULL,
    last_seen timestamp with time zone DEFAULT now() NOT NULL,
    source_no smallint NOT NULL
);

ALTER TABLE ONLY public.sources FORCE ROW LEVEL SECURITY;

CREATE VIEW public.readings WITH (security_invoker='true') AS
 SELECT h."time",
    p.tenant_id,
    p.id AS person_id,
    d.name AS metric,
    ((h.value)::text)::double precision AS value,
    x.value2,
    x.details,
    s.source,
    h.utc_offset_min,
    h.received_at,
    rec.id AS record_id
   FROM (((((public.readings_hot h
     JOIN public.people p ON ((p.person_no = h.person_no)))
     JOIN public.data_types d ON ((d.code = h.metric_no)))
     JOIN public.sources s ON (((s.person_id = p.id) AND (s.source_no = h.source_no))))
     LEFT JOIN public.readings_hot_extra x ON (((x.person_no = h.person_no) AND (x.metric_no = h.metric_no) AND (x."time" = h."time") AND (x.source_no = h.source_no))))
     LEFT JOIN public.records rec ON (((rec.person_id = p.id) AND (rec.record_no = h.record_no))));

CREATE TABLE public.readings_hourly (
    tenant_id uuid NOT NULL,
    person_id uuid NOT NULL,
    day date NOT NULL,
    metric text NOT NULL,
    source text NOT NULL,
    total double precision[] NOT NULL,
    lo real[] NOT NULL,
    hi real[] NOT NULL,
    n integer[] NOT NULL,
    CONSTRAINT readings_hourly_hi_check CHECK ((cardinality(hi) = 24)),
    CONSTRAINT readings_hourly_lo_check CHECK ((cardinality(lo) = 24)),
    CONSTRAINT readings_hourly_n_check CHECK ((cardinality(n) = 24)),
    CONSTRAINT readings_hourly_total_check CHECK ((cardinality(total) = 24))
);

ALTER TABLE ONLY public.readings_hourly FORCE ROW LEVEL SECURITY;

CREATE TABLE public.readings_hourly_dirty (
    tenant_id uuid NOT NULL,
    person_id uuid NOT NULL,
    metric text NOT NULL,
    hour timestamp with time zone NOT NULL,
    marked_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY public.readings_hourly_dirty FORCE ROW LEVEL SECURITY;

CREATE TABLE public.readings_hourly_state (
    tenant_id uuid NOT NULL,
    rolled_from timestamp with time zone NOT NULL,
    rolled_to timestamp with time zone NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT readings_hourly_state_check CHECK ((rolled_from <= rolled_to))
);

ALTER TABLE ONLY public.readings_hourly_state FORCE ROW LEVEL SECURITY;

CREATE TABLE public.readings_packed (
    tenant_id uuid NOT NULL,
    person_id uuid NOT NULL,
    metric text NOT NULL,
    day date NOT NULL,
    source text NOT NULL,
    reading_count integer NOT NULL,
    received_at timestamp with time zone NOT NULL,
    total real[] DEFAULT '{}'::real[] NOT NULL,
    lo real[] DEFAULT '{}'::real[] NOT NULL,
    hi real[] DEFAULT '{}'::real[] NOT NULL,
    n integer[] DEFAULT '{}'::integer[] NOT NULL,
    offsets smallint[] DEFAULT '{}'::smallint[] NOT NULL,
    at_ms integer[] DEFAULT '{}'::integer[] NOT NULL,
    x_value double precision[] DEFAULT '{}'::double precision[] NOT NULL,
    x_value2 double precision[] DEFAULT '{}'::double precision[] NOT NULL,
    x_details jsonb[] DEFAULT '{}'::jsonb[] NOT NULL,
    x_offset smallint[] DEFAULT '{}'::smallint[] NOT NULL,
    x_record bigint[] DEFAULT '{}'::bigint[] NOT NULL,
    packed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT readings_packed_reading_count_check CHECK ((reading_count > 0))
);

ALTER TABLE ONLY public.readings_packed FORCE ROW LEVEL SECURITY;

ALTER TABLE public.records ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.records_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.source_priority (
    tenant_id uuid NOT NULL,
    person_id uuid NOT NULL,
    metric text NOT NULL,
    sources text[] NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT source_priority_metric_check CHECK ((metric = 'steps'::text)),
    CONSTRAINT source_priority_sources_check CHECK (((cardinality(sources) >= 1) AND (cardinality(sources) <= 20)))
);

ALTER TABLE ONLY public.source_priority FORCE ROW LEVEL SECURITY;

CREATE TABLE public.staff (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    tenant_id uuid NOT NULL,
    external_id text NOT NULL,
    role text NOT NULL,
    display_name text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    on_duty boolean DEFAULT false NOT NULL,
    CONSTRAINT staff_external_id_check CHECK (((length(external_id) >= 1) AND (length(external_id) <= 200))),
    CONSTRAINT staff_role_check CHECK ((role = ANY (ARRAY['care_agent'::text, 'care_supervisor'::text, 'tenant_admin'::text])))
);

ALTER TABLE ONLY public.staff FORCE ROW LEVEL SECURITY;

CREATE TABLE public.tenant_detection_settings (
    tenant_id uuid NOT NULL,
    operating_point text NOT NULL,
    updated_by text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT tenant_detection_settings_operating_point_check CHECK ((operating_point = ANY (ARRAY['low'::text, 'standard'::text, 'high'::text])))
);

ALTER TABLE ONLY public.tenant_detection_settings FORCE ROW LEVEL SECURITY;

CREATE TABLE public.tenants (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    access_log_names_staff boolean DEFAULT false NOT NULL,
    time_zone text DEFAULT 'UTC'::text NOT NULL,
    tenant_no smallint NOT NULL,
    CONSTRAINT tenants_name_check CHECK (((length(name) >= 1) AND (length(name) <= 200)))
);

ALTER TABLE ONLY public.tenants FORCE ROW LEVEL SECURITY;

ALTER TABLE public.tenants ALTER COLUMN tenant_no ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.tenants_tenant_no_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.webhook_endpoints (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    tenant_id uuid NOT NULL,
    url text NOT NULL,
    events text[] NOT NULL,
    description text,
    include_health_values boolean DEFAULT false NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    secret text NOT NULL,
    previous_secret text,
    previous_secret_until timestamp with time zone,
    created_by text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT webhook_endpoints_description_check CHECK ((length(description) <= 500)),
    CONSTRAINT webhook_endpoints_events_check CHECK (((cardinality(events) >= 1) AND (events <@ ARRAY['alert.opened'::text, 'alert.claimed'::text, 'alert.contacted'::text, 'alert.resolved'::text, 'member.replied'::text, 'consent.changed'::text]))),
    CONSTRAINT webhook_endpoints_url_check CHECK (((length(url) >= 1) AND (length(url) <= 2048)))
);

ALTER TABLE ONLY public.webhook_endpoints FORCE ROW LEVEL SECURITY;

ALTER TABLE ONLY public.alert_evidence
    ADD CONSTRAINT alert_evidence_pkey PRIMARY KEY (alert_id, anomaly_event_id);

ALTER TABLE ONLY public.alert_timeline
    ADD CONSTRAINT alert_timeline_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.alerts
    ADD CONSTRAINT alerts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.anomaly_events
    ADD CONSTRAINT anomaly_events_person_id_feature_kind_tier_start_time_key UNIQUE (person_id, feature, kind, tier, start_time);

ALTER TABLE ONLY public.anomaly_events
    ADD CONSTRAINT anomaly_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.consent_events
    ADD CONSTRAINT consent_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.consent_state
    ADD CONSTRAINT consent_state_pkey PRIMARY KEY (person_id, data_type, purpose);

ALTER TABLE ONLY public.data_types
    ADD CONSTRAINT data_types_code_key UNIQUE (code);

ALTER TABLE ONLY public.data_types
    ADD CONSTRAINT data_types_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.detection_work
    ADD CONSTRAINT detection_work_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.detector_checkpoints
    ADD CONSTRAINT detector_checkpoints_pkey PRIMARY KEY (person_id, window_end);

ALTER TABLE ONLY public.detector_feedback
    ADD CONSTRAINT detector_feedback_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.detector_state
    ADD CONSTRAINT detector_state_pkey PRIMARY KEY (person_id);

ALTER TABLE ONLY public.devices
    ADD CONSTRAINT devices_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.devices
    ADD CONSTRAINT devices_tenant_id_provider_token_key UNIQUE (tenant_id, provider, token);

ALTER TABLE ONLY public.escalation_policies
    ADD CONSTRAINT escalation_policies_pkey PRIMARY KEY (tenant_id);

ALTER TABLE ONLY public.guardianships
    ADD CONSTRAINT guardianships_pkey PRIMARY KEY (guardian_id, minor_id);

ALTER TABLE ONLY public.notification_deliveries
    ADD CONSTRAINT notification_deliveries_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.people
    ADD CONSTRAINT people_person_no_key UNIQUE (person_no);

ALTER TABLE ONLY public.people
    ADD CONSTRAINT people_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.people
    ADD CONSTRAINT people_tenant_id_external_id_key UNIQUE (tenant_id, external_id);

ALTER TABLE ONLY public.readings_hourly_dirty
    ADD CONSTRAINT readings_hourly_dirty_pkey PRIMARY KEY (person_id, metric, hour);

ALTER TABLE ONLY public.readings_hourly
    ADD CONSTRAINT readings_hourly_pkey PRIMARY KEY (person_id, metric, day, source);

ALTER TABLE ONLY public.readings_hourly_state
    ADD CONSTRAINT readings_hourly_state_pkey PRIMARY KEY (tenant_id);

ALTER TABLE ONLY public.readings_packed
    ADD CONSTRAINT readings_packed_pkey PRIMARY KEY (person_id, metric, day, source);

ALTER TABLE ONLY public.records
    ADD CONSTRAINT records_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.source_priority
    ADD CONSTRAINT source_priority_pkey PRIMARY KEY (person_id, metric);

ALTER TABLE ONLY public.sources
    ADD CONSTRAINT sources_pkey PRIMARY KEY (person_id, source);

ALTER TABLE ONLY public.staff
    ADD CONSTRAINT staff_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.staff
    ADD CONSTRAINT staff_tenant_id_external_id_key UNIQUE (tenant_id, external_id);

ALTER TABLE ONLY public.tenant_detection_settings
    ADD CONSTRAINT tenant_detection_settings_pkey PRIMARY KEY (tenant_id);

ALTER TABLE ONLY public.tenants
    ADD CONSTRAINT tenants_name_key UNIQUE (name);

ALTER TABLE ONLY public.tenants
    ADD CONSTRAINT tenants_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.tenants
    ADD CONSTRAINT tenants_tenant_no_key UNIQUE (tenant_no);

ALTER TABLE ONLY public.webhook_endpoints
    ADD CONSTRAINT webhook_endpoints_pkey PRIMARY KEY (id);

CREATE INDEX alert_timeline_alert ON public.alert_timeline USING btree (alert_id, id);

CREATE INDEX alerts_escalation_due ON public.alerts USING btree (next_escalation_at) WHERE (next_escalation_at IS NOT NULL);

CREATE UNIQUE INDEX alerts_one_open ON public.alerts USING btree (person_id, kind, feature) WHERE (status <> 'resolved'::text);

CREATE INDEX alerts_queue ON public.alerts USING btree (tenant_id, status, severity_rank DESC, opened_at);

CREATE INDEX alerts_tenant_opened ON public.alerts USING btree (tenant_id, opened_at) INCLUDE (person_id, feature, severity, claimed_at, resolved_at, resolution, assignee_id, first_contact_at, first_answer_at, first_answer, escalations_fired);

CREATE INDEX anomaly_events_unhandled ON public.anomaly_events USING btree (tenant_id, id) WHERE (handled_at IS NULL);

CREATE INDEX audit_log_subject ON public.audit_log USING btree (subject_person_id, id DESC) WHERE (subject_person_id IS NOT NULL);

CREATE INDEX audit_log_tenant_at ON public.audit_log USING btree (tenant_id, at DESC);

CREATE INDEX consent_events_person ON public.consent_events USING btree (person_id, id);

CREATE INDEX consent_events_tenant_created ON public.consent_events USING btree (tenant_id, created_at);

CREATE INDEX consent_state_expiring ON public.consent_state USING btree (valid_until) WHERE (granted AND (valid_until IS NOT NULL));

CREATE INDEX detection_work_person ON public.detection_work USING btree (person_id, id);

CREATE INDEX detector_feedback_pending ON public.detector_feedback USING btree (person_id) WHERE (applied_at IS NULL);

CREATE INDEX devices_person ON public.devices USING btree (person_id) WHERE (disabled_at IS NULL);

CREATE INDEX devices_staff ON public.devices USING btree (staff_id) WHERE (disabled_at IS NULL);

CREATE INDEX guardianships_minor ON public.guardianships USING btree (minor_id);

CREATE INDEX notification_deliveries_notification ON public.notification_deliveries USING btree (notification_id, id);

CREATE INDEX notifications_alert ON public.notifications USING btree (alert_id);

CREATE INDEX notifications_due ON public.notifications USING btree (not_before) WHERE (status = ANY (ARRAY['queued'::text, 'held'::text]));

CREATE INDEX notifications_endpoint ON public.notifications USING btree (endpoint_id, seq) WHERE (endpoint_id IS NOT NULL);

CREATE INDEX notifications_tenant_created ON public.notifications USING btree (tenant_id, created_at);

CREATE INDEX notifications_webhook_order ON public.notifications USING btree (endpoint_id, order_key, seq) WHERE (status = ANY (ARRAY['queued'::text, 'held'::text, 'sending'::text]));

CREATE UNIQUE INDEX readings_hot_extra_key ON public.readings_hot_extra USING btree (person_no, metric_no, "time", source_no);

CREATE UNIQUE INDEX readings_hot_key ON public.readings_hot USING btree (person_no, metric_no, "time", source_no);

CREATE INDEX records_alias ON public.records USING btree (person_id, platform, alias_id) WHERE (alias_id IS NOT NULL);

CREATE UNIQUE INDEX records_identity ON public.records USING btree (person_id, platform, native_id, source_app);

CREATE UNIQUE INDEX records_number ON public.records USING btree (person_id, record_no);

CREATE INDEX records_window ON public.records USING btree (person_id, platform, source_app, metric, start_time);

CREATE UNIQUE INDEX sources_number ON public.sources USING btree (person_id, source_no);

CREATE INDEX webhook_endpoints_tenant ON public.webhook_endpoints USING btree (tenant_id);

CREATE TRIGGER alert_timeline_append_only BEFORE UPDATE ON public.alert_timeline FOR EACH ROW EXECUTE FUNCTION public.refuse_change();

CREATE TRIGGER alert_timeline_outcomes AFTER INSERT ON public.alert_timeline FOR EACH ROW WHEN ((new.action = ANY (ARRAY['contact'::text, 'reach_out'::text, 'person_replied'::text, 'escalated'::text]))) EXECUTE FUNCTION public.alert_timeline_outcomes();

CREATE TRIGGER audit_log_append_only BEFORE DELETE OR UPDATE ON public.audit_log FOR EACH ROW EXECUTE FUNCTION public.refuse_change();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON public.audit_log FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_change();

CREATE TRIGGER consent_events_append_only BEFORE DELETE OR UPDATE ON public.consent_events FOR EACH ROW EXECUTE FUNCTION public.refuse_change();

CREATE TRIGGER consent_events_apply AFTER INSERT ON public.consent_events FOR EACH ROW EXECUTE FUNCTION public.consent_events_apply();

CREATE TRIGGER consent_events_check_grant BEFORE INSERT ON public.consent_events FOR EACH ROW EXECUTE FUNCTION public.consent_events_check_grant();

CREATE TRIGGER consent_events_no_truncate BEFORE TRUNCATE ON public.consent_events FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_change();

CREATE TRIGGER consent_events_webhooks AFTER INSERT ON public.consent_events FOR EACH ROW EXECUTE FUNCTION public.consent_events_webhooks();

CREATE TRIGGER data_types_add_only BEFORE DELETE OR UPDATE ON public.data_types FOR EACH ROW EXECUTE FUNCTION public.refuse_change();

CREATE TRIGGER data_types_no_truncate BEFORE TRUNCATE ON public.data_types FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_change();

CREATE TRIGGER data_types_refresh AFTER INSERT ON public.data_types FOR EACH STATEMENT EXECUTE FUNCTION public.data_types_refresh();

CREATE TRIGGER notification_deliveries_summary AFTER INSERT ON public.notification_deliveries FOR EACH ROW EXECUTE FUNCTION public.notification_deliveries_summary();

CREATE TRIGGER people_person_no_fixed BEFORE UPDATE OF person_no ON public.people FOR EACH ROW WHEN ((new.person_no IS DISTINCT FROM old.person_no)) EXECUTE FUNCTION public.refuse_renumbering('person_no');

CREATE TRIGGER readings_write INSTEAD OF INSERT OR DELETE ON public.readings FOR EACH ROW EXECUTE FUNCTION public.readings_view_write();

CREATE TRIGGER records_number BEFORE INSERT ON public.records FOR EACH ROW EXECUTE FUNCTION public.records_number();

CREATE TRIGGER records_number_fixed BEFORE UPDATE OF record_no ON public.records FOR EACH ROW WHEN ((new.record_no IS DISTINCT FROM old.record_no)) EXECUTE FUNCTION public.refuse_renumbering('record_no');

CREATE TRIGGER sources_number BEFORE INSERT ON public.sources FOR EACH ROW EXECUTE FUNCTION public.sources_number();

CREATE TRIGGER sources_number_fixed BEFORE UPDATE OF source_no ON public.sources FOR EACH ROW WHEN ((new.source_no IS DISTINCT FROM old.source_no)) EXECUTE FUNCTION public.refuse_renumbering('source_no');

CREATE TRIGGER ts_insert_blocker BEFORE INSERT ON public.readings_hot FOR EACH ROW EXECUTE FUNCTION _timescaledb_functions.insert_blocker();

ALTER TABLE ONLY public.alert_evidence
    ADD CONSTRAINT alert_evidence_alert_id_fkey FOREIGN KEY (alert_id) REFERENCES public.alerts(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.alert_evidence
    ADD CONSTRAINT alert_evidence_anomaly_event_id_fkey FOREIGN KEY (anomaly_event_id) REFERENCES public.anomaly_events(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.alert_timeline
    ADD CONSTRAINT alert_timeline_alert_id_fkey FOREIGN KEY (alert_id) REFERENCES public.alerts(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.alerts
    ADD CONSTRAINT alerts_assignee_id_fkey FOREIGN KEY (assignee_id) REFERENCES public.staff(id);

ALTER TABLE ONLY public.alerts
    ADD CONSTRAINT alerts_consent_event_id_fkey FOREIGN KEY (consent_event_id) REFERENCES public.consent_events(id);

ALTER TABLE ONLY public.alerts
    ADD CONSTRAINT alerts_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.alerts
    ADD CONSTRAINT alerts_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.anomaly_events
    ADD CONSTRAINT anomaly_events_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.consent_events
    ADD CONSTRAINT consent_events_actor_person_id_fkey FOREIGN KEY (actor_person_id) REFERENCES public.people(id);

ALTER TABLE ONLY public.consent_events
    ADD CONSTRAINT consent_events_data_type_fkey FOREIGN KEY (data_type) REFERENCES public.data_types(name);

ALTER TABLE ONLY public.consent_events
    ADD CONSTRAINT consent_events_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id);

ALTER TABLE ONLY public.consent_events
    ADD CONSTRAINT consent_events_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.consent_state
    ADD CONSTRAINT consent_state_event_id_fkey FOREIGN KEY (event_id) REFERENCES public.consent_events(id);

ALTER TABLE ONLY public.consent_state
    ADD CONSTRAINT consent_state_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id);

ALTER TABLE ONLY public.detection_work
    ADD CONSTRAINT detection_work_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.detector_checkpoints
    ADD CONSTRAINT detector_checkpoints_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.detector_feedback
    ADD CONSTRAINT detector_feedback_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.detector_state
    ADD CONSTRAINT detector_state_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.devices
    ADD CONSTRAINT devices_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.devices
    ADD CONSTRAINT devices_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES public.staff(id);

ALTER TABLE ONLY public.devices
    ADD CONSTRAINT devices_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.escalation_policies
    ADD CONSTRAINT escalation_policies_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.guardianships
    ADD CONSTRAINT guardianships_guardian_id_fkey FOREIGN KEY (guardian_id) REFERENCES public.people(id);

ALTER TABLE ONLY public.guardianships
    ADD CONSTRAINT guardianships_minor_id_fkey FOREIGN KEY (minor_id) REFERENCES public.people(id);

ALTER TABLE ONLY public.guardianships
    ADD CONSTRAINT guardianships_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.notification_deliveries
    ADD CONSTRAINT notification_deliveries_device_id_fkey FOREIGN KEY (device_id) REFERENCES public.devices(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.notification_deliveries
    ADD CONSTRAINT notification_deliveries_notification_id_fkey FOREIGN KEY (notification_id) REFERENCES public.notifications(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_alert_id_fkey FOREIGN KEY (alert_id) REFERENCES public.alerts(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_endpoint_id_fkey FOREIGN KEY (endpoint_id) REFERENCES public.webhook_endpoints(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES public.staff(id);

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.people
    ADD CONSTRAINT people_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.readings_hourly_dirty
    ADD CONSTRAINT readings_hourly_dirty_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.readings_hourly
    ADD CONSTRAINT readings_hourly_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.readings_hourly_state
    ADD CONSTRAINT readings_hourly_state_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.readings_packed
    ADD CONSTRAINT readings_packed_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.records
    ADD CONSTRAINT records_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.source_priority
    ADD CONSTRAINT source_priority_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.sources
    ADD CONSTRAINT sources_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.sources
    ADD CONSTRAINT sources_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.staff
    ADD CONSTRAINT staff_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.tenant_detection_settings
    ADD CONSTRAINT tenant_detection_settings_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.webhook_endpoints
    ADD CONSTRAINT webhook_endpoints_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE public.alert_evidence ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.alert_timeline ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.alerts ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.anomaly_events ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.audit_log ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.consent_events ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.consent_state ENABLE ROW LEVEL SECURITY;

CREATE POLICY consent_webhooks ON public.notifications FOR INSERT TO CURRENT_USER WITH CHECK ((recipient_kind = 'webhook'::text));

CREATE POLICY consent_webhooks ON public.people FOR SELECT TO CURRENT_USER USING (true);

CREATE POLICY consent_webhooks ON public.webhook_endpoints FOR SELECT TO CURRENT_USER USING (true);

ALTER TABLE public.data_types ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.detection_work ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.detector_checkpoints ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.detector_feedback ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.detector_state ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.devices ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.escalation_policies ENABLE ROW LEVEL SECURITY;

CREATE POLICY guardian_acts ON public.consent_events FOR INSERT TO beidou_app WITH CHECK (((tenant_id = public.beidou_tenant()) AND (actor = 'guardian'::text) AND (actor_person_id = public.beidou_person()) AND (person_id IN ( SELECT public.beidou_dependants() AS beidou_dependants))));

CREATE POLICY guardian_reads ON public.consent_events FOR SELECT TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND (person_id IN ( SELECT public.beidou_dependants() AS beidou_dependants))));

CREATE POLICY guardian_reads ON public.consent_state FOR SELECT TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND (person_id IN ( SELECT public.beidou_dependants() AS beidou_dependants))));

CREATE POLICY guardian_reads ON public.people FOR SELECT TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND (id IN ( SELECT public.beidou_dependants() AS beidou_dependants))));

ALTER TABLE public.guardianships ENABLE ROW LEVEL SECURITY;

CREATE POLICY isolation ON public.alert_evidence TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.alert_timeline TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.alerts TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.anomaly_events TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.audit_log TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND (public.beidou_person() IS NULL))) WITH CHECK ((tenant_id = public.beidou_tenant()));

CREATE POLICY isolation ON public.consent_events TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.consent_state TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.detection_work TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.detector_checkpoints TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.detector_feedback TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.detector_state TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.devices TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.escalation_policies TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND (public.beidou_person() IS NULL))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND (public.beidou_person() IS NULL)));

CREATE POLICY isolation ON public.guardianships TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (guardian_id = public.beidou_person()) OR (minor_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (guardian_id = public.beidou_person()) OR (minor_id = public.beidou_person()))));

CREATE POLICY isolation ON public.notification_deliveries TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.notifications TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.people TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (id = public.beidou_person()))));

CREATE POLICY isolation ON public.readings_hot TO beidou_app USING (((tenant_no = ( SELECT public.beidou_tenant_no() AS beidou_tenant_no)) AND ((public.beidou_person() IS NULL) OR (person_no = ( SELECT public.beidou_person_no() AS beidou_person_no))))) WITH CHECK (((tenant_no = ( SELECT public.beidou_tenant_no() AS beidou_tenant_no)) AND ((public.beidou_person() IS NULL) OR (person_no = ( SELECT public.beidou_person_no() AS beidou_person_no)))));

CREATE POLICY isolation ON public.readings_hot_extra TO beidou_app USING (((tenant_no = ( SELECT public.beidou_tenant_no() AS beidou_tenant_no)) AND ((public.beidou_person() IS NULL) OR (person_no = ( SELECT public.beidou_person_no() AS beidou_person_no))))) WITH CHECK (((tenant_no = ( SELECT public.beidou_tenant_no() AS beidou_tenant_no)) AND ((public.beidou_person() IS NULL) OR (person_no = ( SELECT public.beidou_person_no() AS beidou_person_no)))));

CREATE POLICY isolation ON public.readings_hourly TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.readings_hourly_dirty TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.readings_hourly_state TO beidou_app USING ((tenant_id = public.beidou_tenant())) WITH CHECK (((tenant_id = public.beidou_tenant()) AND (public.beidou_person() IS NULL)));

CREATE POLICY isolation ON public.readings_packed TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.records TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.source_priority TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.sources TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person())))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND ((public.beidou_person() IS NULL) OR (person_id = public.beidou_person()))));

CREATE POLICY isolation ON public.staff TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND (public.beidou_person() IS NULL))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND (public.beidou_person() IS NULL)));

CREATE POLICY isolation ON public.tenant_detection_settings TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND (public.beidou_person() IS NULL))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND (public.beidou_person() IS NULL)));

CREATE POLICY isolation ON public.webhook_endpoints TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND (public.beidou_person() IS NULL))) WITH CHECK (((tenant_id = public.beidou_tenant()) AND (public.beidou_person() IS NULL)));

CREATE POLICY maintained_by_migrations ON public.data_types TO CURRENT_USER USING (true) WITH CHECK (true);

CREATE POLICY maintained_by_trigger ON public.consent_state TO CURRENT_USER USING (true) WITH CHECK (true);

ALTER TABLE public.notification_deliveries ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.notifications ENABLE ROW LEVEL SECURITY;

CREATE POLICY only_guardians_act_as_guardian ON public.consent_events AS RESTRICTIVE FOR INSERT TO beidou_app WITH CHECK (((actor <> 'guardian'::text) OR ((actor_person_id = public.beidou_person()) AND (person_id IN ( SELECT public.beidou_dependants() AS beidou_dependants)))));

CREATE POLICY operator_manage ON public.tenants TO CURRENT_USER USING (true) WITH CHECK (true);

CREATE POLICY own_access_log ON public.audit_log FOR SELECT TO beidou_app USING (((tenant_id = public.beidou_tenant()) AND (public.beidou_person() IS NOT NULL) AND (subject_person_id = public.beidou_person()) AND (actor_kind = 'staff'::text)));

ALTER TABLE public.people ENABLE ROW LEVEL SECURITY;

CREATE POLICY readable ON public.data_types TO beidou_app USING (true);

ALTER TABLE public.readings_hot ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.readings_hot_extra ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.readings_hourly ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.readings_hourly_dirty ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.readings_hourly_state ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.readings_packed ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.records ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.source_priority ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.sources ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.staff ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.tenant_detection_settings ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_self ON public.tenants TO beidou_app USING ((id = public.beidou_tenant()));

ALTER TABLE public.tenants ENABLE ROW LEVEL SECURITY;

ALTER TABLE public.webhook_endpoints ENABLE ROW LEVEL SECURITY;

REVOKE USAGE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO beidou_app;

REVOKE ALL ON FUNCTION public.beidou_consent_in_force(person uuid, data_type text, purpose text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.beidou_consent_in_force(person uuid, data_type text, purpose text) TO beidou_app;

REVOKE ALL ON FUNCTION public.beidou_consents_in_force(people uuid[], purpose text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.beidou_consents_in_force(people uuid[], purpose text) TO beidou_app;

REVOKE ALL ON FUNCTION public.beidou_drop_packed_chunk(p_start timestamp with time zone, p_end timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.beidou_drop_packed_chunk(p_start timestamp with time zone, p_end timestamp with time zone) TO beidou_app;

REVOKE ALL ON FUNCTION public.beidou_erase_hot_readings(p_person uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.beidou_erase_hot_readings(p_person uuid) TO beidou_app;

REVOKE ALL ON FUNCTION public.beidou_hourly_span(p_person uuid, p_metrics text[], p_from timestamp with time zone, p_to timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.beidou_hourly_span(p_person uuid, p_metrics text[], p_from timestamp with time zone, p_to timestamp with time zone) TO beidou_app;

REVOKE ALL ON FUNCTION public.beidou_ingest_staged(p_tenant uuid, p_channel text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.beidou_ingest_staged(p_tenant uuid, p_channel text) TO beidou_app;

REVOKE ALL ON FUNCTION public.beidou_packable_chunks(hot_days integer, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.beidou_packable_chunks(hot_days integer, p_limit integer) TO beidou_app;

REVOKE ALL ON FUNCTION public.beidou_raw_hours(p_person uuid, p_metrics text[], p_from timestamp with time zone, p_to timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.beidou_raw_hours(p_person uuid, p_metrics text[], p_from timestamp with time zone, p_to timestamp with time zone) TO beidou_app;

REVOKE ALL ON FUNCTION public.beidou_readings_span(p_person uuid, p_metrics text[], p_from timestamp with time zone, p_to timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.beidou_readings_span(p_person uuid, p_metrics text[], p_from timestamp with time zone, p_to timestamp with time zone) TO beidou_app;

REVOKE ALL ON FUNCTION public.beidou_steps_hourly(p_person uuid, p_from timestamp with time zone, p_to timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.beidou_steps_hourly(p_person uuid, p_from timestamp with time zone, p_to timestamp with time zone) TO beidou_app;

REVOKE ALL ON FUNCTION public.beidou_steps_merged(p_person uuid, p_from timestamp with time zone, p_to timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.beidou_steps_merged(p_person uuid, p_from timestamp with time zone, p_to timestamp with time zone) TO beidou_app;

REVOKE ALL ON FUNCTION public.beidou_steps_span(p_person uuid, p_from timestamp with time zone, p_to timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.beidou_steps_span(p_person uuid, p_from timestamp with time zone, p_to timestamp with time zone) TO beidou_app;

REVOKE ALL ON FUNCTION public.beidou_tenant_ids() FROM PUBLIC;
GRANT ALL ON FUNCTION public.beidou_tenant_ids() TO beidou_app;

REVOKE ALL ON FUNCTION public.consent_due_expiries(max_rows integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.consent_due_expiries(max_rows integer) TO beidou_app;

GRANT SELECT,INSERT,DELETE ON TABLE public.alert_evidence TO beidou_app;

GRANT SELECT,INSERT,DELETE ON TABLE public.alert_timeline TO beidou_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.alerts TO beidou_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.anomaly_events TO beidou_app;

GRANT SELECT,INSERT ON TABLE public.audit_log TO beidou_app;

GRANT SELECT,INSERT ON TABLE public.consent_events TO beidou_app;

GRANT SELECT ON TABLE public.consent_state TO beidou_app;

GRANT SELECT ON TABLE public.data_types TO beidou_app;

GRANT SELECT,INSERT,DELETE ON TABLE public.detection_work TO beidou_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.detector_checkpoints TO beidou_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.detector_feedback TO beidou_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.detector_state TO beidou_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.devices TO beidou_app;

GRANT SELECT,INSERT,UPDATE ON TABLE public.escalation_policies TO beidou_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.guardianships TO beidou_app;

GRANT SELECT,INSERT,DELETE ON TABLE public.notification_deliveries TO beidou_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.notifications TO beidou_app;

GRANT SELECT,INSERT,UPDATE ON TABLE public.people TO beidou_app;

GRANT SELECT,INSERT,DELETE ON TABLE public.readings_hot TO beidou_app;

GRANT SELECT,INSERT,DELETE ON TABLE public.readings_hot_extra TO beidou_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.records TO beidou_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.sources TO beidou_app;

GRANT SELECT,INSERT,DELETE ON TABLE public.readings TO beidou_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.readings_hourly TO beidou_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.readings_hourly_dirty TO beidou_app;

GRANT SELECT,INSERT,UPDATE ON TABLE public.readings_hourly_state TO beidou_app;

GRANT SELECT,INSERT,DELETE ON TABLE public.readings_packed TO beidou_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.source_priority TO beidou_app;

GRANT SELECT,INSERT,UPDATE ON TABLE public.staff TO beidou_app;

GRANT SELECT,INSERT,UPDATE ON TABLE public.tenant_detection_settings TO beidou_app;

GRANT SELECT ON TABLE public.tenants TO beidou_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.webhook_endpoints TO beidou_app;
