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
