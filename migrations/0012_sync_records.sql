-- Records from a phone's health store (Health Connect, HealthKit, Huawei Health) and from FHIR partners.
--
-- A record has an identity on its platform and a version; it owns its readings (readings.record_id). An
-- update replaces all of a record's readings in one transaction, a delete removes them and keeps the record
-- as a tombstone (state 'deleted') for audit. Readings of a record carry source = '<platform>:<app>', so they
-- never collide with `/v1/readings` items, which keep their own natural key (person, metric, time, source).

CREATE TABLE records (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id        uuid NOT NULL,
  person_id        uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
  platform         text NOT NULL CHECK (platform IN ('health_connect', 'healthkit', 'huawei', 'fhir')),
  source_app       text NOT NULL CHECK (length(source_app) BETWEEN 1 AND 255),
  native_id        text NOT NULL CHECK (length(native_id) BETWEEN 1 AND 255),
  alias_id         text,                      -- HealthKit: the sample uuid when the identity is a sync identifier
  record_type      text NOT NULL,             -- the platform's own type name
  metric           text NOT NULL,
  version_time     timestamptz,               -- Health Connect lastModifiedTime, FHIR meta.lastUpdated
  version_seq      bigint NOT NULL DEFAULT 0, -- clientRecordVersion, HealthKit sync version
  content_hash     text NOT NULL,
  state            text NOT NULL CHECK (state IN ('live', 'deleted')),
  start_time       timestamptz NOT NULL,
  end_time         timestamptz NOT NULL,
  utc_offset_min   smallint NOT NULL,         -- the offset as sent, or the person's zone when inferred
  offset_inferred  boolean NOT NULL,
  reading_count    integer NOT NULL DEFAULT 0,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  deleted_at       timestamptz
);
-- Identity (a record id reused by another person is that person's own record). Native id before the app:
-- platform deletions name only the record id.
CREATE UNIQUE INDEX records_identity ON records (person_id, platform, native_id, source_app);
CREATE INDEX records_alias ON records (person_id, platform, alias_id) WHERE alias_id IS NOT NULL;
CREATE INDEX records_window ON records (person_id, platform, source_app, metric, start_time);

ALTER TABLE readings ADD COLUMN record_id bigint;  -- NULL: sent through /v1/readings or the stream

ALTER TABLE records ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON records TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()));

GRANT SELECT, INSERT, UPDATE, DELETE ON records TO beidou_app;

-- Several apps counting the same steps are never added up: per person and hour, one steps source is read —
-- the first of the person's ranked sources that has steps in that hour, else the one that counted the most.
CREATE TABLE source_priority (
  tenant_id   uuid NOT NULL,
  person_id   uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
  metric      text NOT NULL CHECK (metric IN ('steps')),
  sources     text[] NOT NULL CHECK (cardinality(sources) BETWEEN 1 AND 20),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (person_id, metric)
);
ALTER TABLE source_priority ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON source_priority TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()));
GRANT SELECT, INSERT, UPDATE, DELETE ON source_priority TO beidou_app;

-- Runs as the caller: row-level security applies to every row it reads.
CREATE FUNCTION beidou_steps_merged(p_person uuid, p_from timestamptz, p_to timestamptz)
RETURNS TABLE ("time" timestamptz, value double precision, source text) LANGUAGE sql STABLE AS $$
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
REVOKE ALL ON FUNCTION beidou_steps_merged(uuid, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION beidou_steps_merged(uuid, timestamptz, timestamptz) TO beidou_app;
