-- Consent in force for many people at once: what ingest asks in every transaction it commits (a hundred people
-- or more). The rule stays in one place: the per-person check is now a member test of this set.
-- No SET clause and schema-qualified names, so PostgreSQL inlines it into the calling query; a function with a
-- SET clause is called once per row instead (about 30 µs each: most of ingest's consent cost).
CREATE FUNCTION beidou_consents_in_force(people uuid[], purpose text)
RETURNS TABLE (person_id uuid, data_type text) LANGUAGE sql STABLE AS
$$ SELECT u.id, c.data_type
     FROM unnest($1) AS u(id),
          LATERAL (SELECT s.data_type
                     FROM public.consent_state s JOIN public.people p ON p.id = s.person_id
                    WHERE s.person_id = u.id AND p.id = u.id AND s.purpose IN ($2, 'monitoring') AND s.granted
                      AND (s.valid_until IS NULL OR s.valid_until > pg_catalog.now()) AND p.erased_at IS NULL
                    GROUP BY s.data_type
                   HAVING count(*) = CASE WHEN $2 = 'monitoring' THEN 1 ELSE 2 END) AS c $$;
REVOKE ALL ON FUNCTION beidou_consents_in_force(uuid[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION beidou_consents_in_force(uuid[], text) TO beidou_app;

CREATE OR REPLACE FUNCTION beidou_consent_in_force(person uuid, data_type text, purpose text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = public, pg_temp AS
$$ SELECT EXISTS (SELECT FROM beidou_consents_in_force(ARRAY[$1], $3) c WHERE c.data_type = $2) $$;

-- A person past the sources limit is told apart from other check failures by the constraint name the error
-- carries (app.core.errors.TooManySources.raised_by), not by the wording of its message.
CREATE OR REPLACE FUNCTION sources_number() RETURNS trigger LANGUAGE plpgsql AS $$
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

-- Everything ingest does after its COPY into the session's stage, in one round trip (it used to be six
-- statements, each waiting for an API event loop busy with a thousand streams): note the stage's sources
-- (a pair seen within the minute is only looked up), move the rows into readings_hot (a large group plainly: a
-- stored key rolls the plain insert back and inserts again without the stored ones, since ON CONFLICT costs
-- ~40 % more per row; a small group with ON CONFLICT at once), queue detection work per person with the
-- oldest reading time stored now, and wake the worker. It reads the session's stage through ingest_coded, the
-- temporary view streaming/ingest.py creates beside it (the stage's rows with their numbers). Runs as the
-- caller, under its row-level security. True if some staged rows were not stored (a resend: the caller then
-- finds which).
CREATE FUNCTION beidou_ingest_staged(p_tenant uuid, p_channel text) RETURNS boolean LANGUAGE plpgsql AS $$
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
REVOKE ALL ON FUNCTION beidou_ingest_staged(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION beidou_ingest_staged(uuid, text) TO beidou_app;
