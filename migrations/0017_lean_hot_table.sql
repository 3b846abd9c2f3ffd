-- A lean hot table: raw readings in the hot window at about half the bytes.
--
-- `readings` stored two uuids and two texts per row and in its one index (201–284 bytes a reading on disk). The
-- hot tier now keeps small numbers instead: a tenant number, a person number, a data type code and a source
-- number per person, a float4 value. Eight fixed-width NOT NULL columns, in an order with no alignment padding,
-- make a 56-byte tuple (no NULL bitmap); the unique index (person_no, metric_no, time, source_no) is 32 bytes
-- an entry. The rare parts of a reading (blood pressure's diastolic, sleep's stages, the platform record that
-- owns it) live in readings_hot_extra, keyed like the reading.
--
-- `readings` stays, as a view with the old column names, for every reader that wants whole rows (export,
-- tests, ad-hoc queries); it also takes INSERT and DELETE (a trigger per row), for the odd writer that is not
-- on a hot path. The service's writers use the lean tables directly; beidou_readings_span (0016) reads the
-- view, whose per-person plan walks the lean index.

-- Numbers assigned once and never reused (an identity: a deleted tenant's or person's number stays gone).
ALTER TABLE tenants ADD COLUMN tenant_no smallint GENERATED ALWAYS AS IDENTITY UNIQUE;
ALTER TABLE people ADD COLUMN person_no integer GENERATED ALWAYS AS IDENTITY UNIQUE;
ALTER TABLE data_types ADD COLUMN code smallint GENERATED ALWAYS AS IDENTITY UNIQUE;

-- A person number is what every hot reading of the person points at: it never changes.
CREATE FUNCTION refuse_renumbering() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%.% never changes', TG_TABLE_NAME, TG_ARGV[0] USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER people_person_no_fixed BEFORE UPDATE OF person_no ON people
  FOR EACH ROW WHEN (NEW.person_no IS DISTINCT FROM OLD.person_no) EXECUTE FUNCTION refuse_renumbering('person_no');

-- Sources are numbered per person (1, 2, …), so a source is a smallint in the hot table and its names stay
-- behind the tenant's wall (a lookup shared by all tenants would show one insurer another's device names).
ALTER TABLE sources ADD COLUMN source_no smallint;
UPDATE sources s SET source_no = n.no
  FROM (SELECT person_id, source, row_number() OVER (PARTITION BY person_id ORDER BY first_seen, source) AS no
          FROM sources) n
 WHERE n.person_id = s.person_id AND n.source = s.source;
-- Readings stored without their source noted (only possible by hand) get one, so every reading moves over.
INSERT INTO sources (tenant_id, person_id, source, first_seen, last_seen, source_no)
SELECT r.tenant_id, r.person_id, r.source, min(r.received_at), max(r.received_at),
       coalesce((SELECT max(source_no) FROM sources s WHERE s.person_id = r.person_id), 0)
       + row_number() OVER (PARTITION BY r.person_id ORDER BY r.source)
  FROM readings r
 WHERE NOT EXISTS (SELECT FROM sources s WHERE s.person_id = r.person_id AND s.source = r.source)
 GROUP BY r.tenant_id, r.person_id, r.source;
ALTER TABLE sources ALTER COLUMN source_no SET NOT NULL;
CREATE UNIQUE INDEX sources_number ON sources (person_id, source_no);

-- A new source takes the person's next number. Two transactions adding a person's first readings from two new
-- sources at once would pick the same one: the person's numbering is serialised by a transaction lock, taken
-- only when the source is new (an upsert of a known source keeps its number and takes no lock).
CREATE FUNCTION sources_number() RETURNS trigger LANGUAGE plpgsql AS $$
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
      RAISE EXCEPTION 'a person has at most 32767 sources' USING ERRCODE = 'check_violation';
    END IF;
    NEW.source_no := next_no;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER sources_number BEFORE INSERT ON sources FOR EACH ROW EXECUTE FUNCTION sources_number();
CREATE TRIGGER sources_number_fixed BEFORE UPDATE OF source_no ON sources
  FOR EACH ROW WHEN (NEW.source_no IS DISTINCT FROM OLD.source_no) EXECUTE FUNCTION refuse_renumbering('source_no');

-- The transaction's tenant and person as numbers. Policies call them as `(SELECT …)`: an InitPlan evaluated
-- once per statement, not a lookup per row.
CREATE FUNCTION beidou_tenant_no() RETURNS smallint LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT tenant_no FROM tenants WHERE id = beidou_tenant() $$;
CREATE FUNCTION beidou_person_no() RETURNS integer LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT person_no FROM people WHERE id = beidou_person() $$;

-- Columns in this order leave no alignment padding: 8 + 8 + 4 + 4 + 2 + 2 + 2 + 2 = 32 bytes of data.
CREATE TABLE readings_hot (
  time            timestamptz NOT NULL,
  received_at     timestamptz NOT NULL DEFAULT now(),
  person_no       integer NOT NULL,     -- people.person_no
  value           real NOT NULL,        -- read back as value::text::float8: 36.6 stays 36.6
  tenant_no       smallint NOT NULL,    -- tenants.tenant_no
  metric_no       smallint NOT NULL,    -- data_types.code
  source_no       smallint NOT NULL,    -- sources.source_no of the person
  utc_offset_min  smallint NOT NULL     -- the offset the phone sent with the time
);
SELECT create_hypertable('readings_hot', 'time', chunk_time_interval => INTERVAL '1 day',
                         associated_schema_name => 'beidou_chunks', create_default_indexes => false);
-- The natural key: a re-sent reading is a no-op, and it serves "this person's metric between two times".
CREATE UNIQUE INDEX readings_hot_key ON readings_hot (person_no, metric_no, time, source_no);

-- What few readings carry besides a value, keyed like the reading. A plain table, not a hypertable: a reader
-- looks a reading's extras up by its key, one index probe, where a hypertable would probe every chunk (a
-- person's whole export took 20 times longer). Packing, record deletes and erasure delete a reading's extras
-- with it.
CREATE TABLE readings_hot_extra (
  time       timestamptz NOT NULL,
  person_no  integer NOT NULL,
  tenant_no  smallint NOT NULL,
  metric_no  smallint NOT NULL,
  source_no  smallint NOT NULL,
  value2     double precision,          -- diastolic for blood_pressure
  details    jsonb,                     -- sleep: end time and minutes per stage
  record_id  bigint                     -- the platform record that owns the reading (records.id)
);
CREATE UNIQUE INDEX readings_hot_extra_key ON readings_hot_extra (person_no, metric_no, time, source_no);

-- The same wall as every person-owned table, on the numbers.
DO $$
DECLARE t text;
  mine constant text := '(tenant_no = (SELECT beidou_tenant_no()) '
                        'AND (beidou_person() IS NULL OR person_no = (SELECT beidou_person_no())))';
BEGIN
  FOREACH t IN ARRAY ARRAY['readings_hot', 'readings_hot_extra'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY isolation ON %I TO beidou_app USING %s WITH CHECK %s', t, mine, mine);
  END LOOP;
END $$;
GRANT SELECT, INSERT, DELETE ON readings_hot, readings_hot_extra TO beidou_app;

-- Move the readings over, then the old table goes and its name becomes the view.
INSERT INTO readings_hot (time, received_at, person_no, value, tenant_no, metric_no, source_no, utc_offset_min)
SELECT r.time, r.received_at, p.person_no, r.value, t.tenant_no, d.code, s.source_no, r.utc_offset_min
  FROM readings r JOIN people p ON p.id = r.person_id JOIN tenants t ON t.id = r.tenant_id
  JOIN data_types d ON d.name = r.metric JOIN sources s ON s.person_id = r.person_id AND s.source = r.source;
INSERT INTO readings_hot_extra (time, person_no, tenant_no, metric_no, source_no, value2, details, record_id)
SELECT r.time, p.person_no, t.tenant_no, d.code, s.source_no, r.value2, r.details, r.record_id
  FROM readings r JOIN people p ON p.id = r.person_id JOIN tenants t ON t.id = r.tenant_id
  JOIN data_types d ON d.name = r.metric JOIN sources s ON s.person_id = r.person_id AND s.source = r.source
 WHERE r.value2 IS NOT NULL OR r.details IS NOT NULL OR r.record_id IS NOT NULL;
DO $$
BEGIN
  IF (SELECT count(*) FROM readings) <> (SELECT count(*) FROM readings_hot) THEN
    RAISE EXCEPTION 'moving readings to readings_hot lost some';
  END IF;
END $$;
DROP TABLE readings;

-- Whole readings with their old column names. Runs as the caller (security_invoker): every table's
-- row-level security applies. A per-person query still walks readings_hot_key (people → person_no).
CREATE VIEW readings WITH (security_invoker = true) AS
SELECT h.time, p.tenant_id, p.id AS person_id, d.name AS metric, h.value::text::float8 AS value, x.value2,
       x.details, s.source, h.utc_offset_min, h.received_at, x.record_id
  FROM readings_hot h
  JOIN people p ON p.person_no = h.person_no
  JOIN data_types d ON d.code = h.metric_no
  JOIN sources s ON s.person_id = p.id AND s.source_no = h.source_no
  LEFT JOIN readings_hot_extra x ON x.person_no = h.person_no AND x.metric_no = h.metric_no AND x.time = h.time
                                AND x.source_no = h.source_no;

-- Writing through the view (one row at a time: fine for a test or an operator, not for ingest). Runs as the
-- caller, so the hot tables' policies check the row; a tenant or person the caller cannot see is refused the
-- same way, and a data type that is not registered is a check violation, as before.
CREATE FUNCTION readings_view_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE t_no smallint; p_no integer; m_no smallint; s_no smallint;
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
    INSERT INTO sources AS s (tenant_id, person_id, source) VALUES (NEW.tenant_id, NEW.person_id, NEW.source)
      ON CONFLICT (person_id, source) DO NOTHING;
    SELECT source_no INTO s_no FROM sources WHERE person_id = NEW.person_id AND source = NEW.source;
    INSERT INTO readings_hot (time, received_at, person_no, value, tenant_no, metric_no, source_no, utc_offset_min)
    VALUES (NEW.time, coalesce(NEW.received_at, now()), p_no, NEW.value, t_no, m_no, s_no, NEW.utc_offset_min);
    IF NEW.value2 IS NOT NULL OR NEW.details IS NOT NULL OR NEW.record_id IS NOT NULL THEN
      INSERT INTO readings_hot_extra (time, person_no, tenant_no, metric_no, source_no, value2, details, record_id)
      VALUES (NEW.time, p_no, t_no, m_no, s_no, NEW.value2, NEW.details, NEW.record_id);
    END IF;
    RETURN NEW;
  END IF;
  SELECT p.person_no, d.code, s.source_no INTO p_no, m_no, s_no
    FROM people p, data_types d, sources s
   WHERE p.id = OLD.person_id AND d.name = OLD.metric AND s.person_id = OLD.person_id AND s.source = OLD.source;
  DELETE FROM readings_hot_extra
   WHERE person_no = p_no AND metric_no = m_no AND time = OLD.time AND source_no = s_no;
  DELETE FROM readings_hot WHERE person_no = p_no AND metric_no = m_no AND time = OLD.time AND source_no = s_no;
  RETURN OLD;
END $$;
CREATE TRIGGER readings_write INSTEAD OF INSERT OR DELETE ON readings
  FOR EACH ROW EXECUTE FUNCTION readings_view_write();
GRANT SELECT, INSERT, DELETE ON readings TO beidou_app;

-- A person's hot readings go in one statement per table (erasure): the view's row trigger would take one
-- statement per reading. Runs as the caller. Returns how many readings went.
CREATE FUNCTION beidou_erase_hot_readings(p_person uuid) RETURNS bigint LANGUAGE sql AS $$
  DELETE FROM readings_hot_extra WHERE person_no = (SELECT person_no FROM people WHERE id = p_person);
  WITH gone AS (DELETE FROM readings_hot WHERE person_no = (SELECT person_no FROM people WHERE id = p_person)
                RETURNING 1)
  SELECT count(*) FROM gone;
$$;
REVOKE ALL ON FUNCTION beidou_erase_hot_readings(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION beidou_erase_hot_readings(uuid) TO beidou_app;

-- beidou_readings_span (0016) reads its hot part from `readings`, now this view: it walks readings_hot_key
-- (people → person_no, data_types → code) and measured as fast as the same query written on the lean tables.

-- Packing (0016) on the lean tables: chunks of readings_hot, each with the tenants that have readings in it.
CREATE OR REPLACE FUNCTION beidou_packable_chunks(hot_days integer, p_limit integer)
RETURNS TABLE (range_start timestamptz, range_end timestamptz, tenant_id uuid) LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = public, pg_temp SET row_security = off AS $$
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

-- Drops a hot chunk once every tenant's rows in it were packed (and deleted; their extras went with them).
CREATE OR REPLACE FUNCTION beidou_drop_packed_chunk(p_start timestamptz, p_end timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET row_security = off AS $$
DECLARE left_over bigint := (SELECT count(*) FROM readings_hot WHERE time >= p_start AND time < p_end);
BEGIN
  IF left_over > 0 THEN
    RAISE EXCEPTION 'chunk % – % still holds % readings: not dropped', p_start, p_end, left_over;
  END IF;
  RETURN (SELECT count(*) FROM drop_chunks('readings_hot', older_than => p_end, newer_than => p_start));
END $$;
