-- A reading's record in its own hot row.
--
-- A reading a platform record owns (Health Connect, HealthKit, Huawei, FHIR) kept its record id in a second row
-- in readings_hot_extra, with its own index entry: about 200 bytes a reading where a plain one took about 107.
-- The hot row now carries the record itself, as a number: records are numbered per person (1, 2, …, assigned
-- once, never reused, like sources), so the number fits an integer for ever while records.id, shared by every
-- person of every tenant, may not. 0 means no record, so the row keeps no NULL (and no NULL bitmap).
-- readings_hot_extra keeps only what few readings carry besides a value: a diastolic, sleep stages.

-- Records: a per-person number, the existing ones in the order they were created.
ALTER TABLE records ADD COLUMN record_no integer;
UPDATE records r SET record_no = n.no
  FROM (SELECT id, row_number() OVER (PARTITION BY person_id ORDER BY id) AS no FROM records) n
 WHERE n.id = r.id;
ALTER TABLE records ALTER COLUMN record_no SET NOT NULL;
ALTER TABLE records ADD CONSTRAINT records_record_no_check CHECK (record_no > 0);
CREATE UNIQUE INDEX records_number ON records (person_id, record_no);

-- A new record takes the person's next number. Two transactions creating a person's records at once would pick
-- the same one: the person's numbering is serialised by a transaction lock (a person's records come from their
-- own phone: they rarely wait). A BEFORE ROW trigger sees the rows its statement inserted before, so one
-- statement inserting many records numbers them one after the other.
CREATE FUNCTION records_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.record_no IS NULL THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('beidou.records:' || NEW.person_id::text, 0));
    SELECT coalesce(max(record_no), 0) + 1 INTO NEW.record_no FROM records WHERE person_id = NEW.person_id;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER records_number BEFORE INSERT ON records FOR EACH ROW EXECUTE FUNCTION records_number();
CREATE TRIGGER records_number_fixed BEFORE UPDATE OF record_no ON records
  FOR EACH ROW WHEN (NEW.record_no IS DISTINCT FROM OLD.record_no) EXECUTE FUNCTION refuse_renumbering('record_no');

-- The hot row: 4 more bytes of data. The row was 32 bytes of data, exactly 8-byte aligned, so every row grows by
-- 8 (a 64-byte tuple); a record's reading drops its extra row and index entry (about 90 bytes).
ALTER TABLE readings_hot ADD COLUMN record_no integer NOT NULL DEFAULT 0;  -- records.record_no of the person

-- Move the records over: every extra row naming a record names one of its person's records.
DO $$
DECLARE named bigint; moved bigint;
BEGIN
  SELECT count(*) INTO named FROM readings_hot_extra WHERE record_id IS NOT NULL;
  UPDATE readings_hot h SET record_no = r.record_no
    FROM readings_hot_extra x JOIN people p ON p.person_no = x.person_no
    JOIN records r ON r.id = x.record_id AND r.person_id = p.id
   WHERE h.person_no = x.person_no AND h.metric_no = x.metric_no AND h.time = x.time AND h.source_no = x.source_no;
  GET DIAGNOSTICS moved = ROW_COUNT;
  IF moved <> named THEN
    RAISE EXCEPTION '% readings name a record that is not their person''s (or have no hot row): not moved',
      named - moved;
  END IF;
END $$;
DELETE FROM readings_hot_extra WHERE value2 IS NULL AND details IS NULL;

-- `readings` keeps its columns: record_id is the record's id, looked up by the person's record number (a unique
-- key, so a query that does not ask for record_id does not join records at all).
CREATE OR REPLACE VIEW readings WITH (security_invoker = true) AS
SELECT h.time, p.tenant_id, p.id AS person_id, d.name AS metric, h.value::text::float8 AS value, x.value2,
       x.details, s.source, h.utc_offset_min, h.received_at, rec.id AS record_id
  FROM readings_hot h
  JOIN people p ON p.person_no = h.person_no
  JOIN data_types d ON d.code = h.metric_no
  JOIN sources s ON s.person_id = p.id AND s.source_no = h.source_no
  LEFT JOIN readings_hot_extra x ON x.person_no = h.person_no AND x.metric_no = h.metric_no AND x.time = h.time
                                AND x.source_no = h.source_no
  LEFT JOIN records rec ON rec.person_id = p.id AND rec.record_no = h.record_no;

ALTER TABLE readings_hot_extra DROP COLUMN record_id;

-- Writing through the view (one row at a time: tests, operators). A record is named by its id and must be one
-- of the person's. Like every writer of readings, it marks the hours before the current one that it changes
-- for the chart roll-up (0018): the conflict's row lock is taken even when the mark is already this
-- transaction's, so the roll-up waits for this commit; the row is updated once a transaction.
CREATE OR REPLACE FUNCTION readings_view_write() RETURNS trigger LANGUAGE plpgsql AS $$
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
