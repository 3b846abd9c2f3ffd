-- Core schema: tenants, people, staff, sources, readings (hypertable), consent events, audit log.
--
-- Isolation: every table has row-level security FORCED. The service connects as the non-owner role
-- beidou_app and sets, per transaction, beidou.tenant_id and (for a policyholder) beidou.person_id.
-- Unset tenant => no rows at all (default deny).

CREATE EXTENSION IF NOT EXISTS timescaledb;

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'beidou_app') THEN
    CREATE ROLE beidou_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
END $$;

REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO beidou_app;
-- Chunks copy the hypertable's grants but not its row-level policies, so a chunk read directly would
-- show every tenant. Our chunks live in their own schema that the service role may not even look into;
-- it reaches readings only through the hypertable and its policies.
CREATE SCHEMA beidou_chunks;
REVOKE ALL ON SCHEMA beidou_chunks FROM PUBLIC;

CREATE FUNCTION beidou_tenant() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('beidou.tenant_id', true), '')::uuid $$;

CREATE FUNCTION beidou_person() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('beidou.person_id', true), '')::uuid $$;

CREATE TABLE tenants (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE people (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id    uuid NOT NULL REFERENCES tenants(id),
  external_id  text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 200),
  time_zone    text NOT NULL DEFAULT 'UTC',
  language     text NOT NULL DEFAULT 'en',
  birth_date   date,
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, external_id)
);

CREATE TABLE staff (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id    uuid NOT NULL REFERENCES tenants(id),
  external_id  text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 200),
  role         text NOT NULL CHECK (role IN ('care_agent', 'care_supervisor', 'tenant_admin')),
  display_name text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, external_id)
);

-- A device or app that sends readings for a person ("watch-1", "phone").
CREATE TABLE sources (
  tenant_id   uuid NOT NULL REFERENCES tenants(id),
  person_id   uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
  source      text NOT NULL,
  first_seen  timestamptz NOT NULL DEFAULT now(),
  last_seen   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (person_id, source)
);

CREATE TABLE readings (
  time            timestamptz NOT NULL,
  tenant_id       uuid NOT NULL,
  person_id       uuid NOT NULL,
  metric          text NOT NULL CHECK (metric IN ('heart_rate', 'resting_heart_rate', 'hrv_rmssd', 'steps',
                    'sleep', 'spo2', 'blood_pressure', 'glucose', 'body_temperature', 'respiratory_rate')),
  value           double precision NOT NULL,
  value2          double precision,          -- diastolic for blood_pressure
  details         jsonb,                     -- sleep: end time and minutes per stage
  source          text NOT NULL,
  utc_offset_min  smallint NOT NULL,         -- the offset the phone sent with the time
  received_at     timestamptz NOT NULL DEFAULT now()
);
-- One index only: every index costs ingest throughput, and every query we serve is per person. The
-- natural key (person, metric, time, source) makes a re-sent reading a no-op and, in this column order,
-- also serves "this person's metric between two times".
SELECT create_hypertable('readings', 'time', chunk_time_interval => INTERVAL '1 day',
                         associated_schema_name => 'beidou_chunks', create_default_indexes => false);
CREATE UNIQUE INDEX readings_natural_key ON readings (person_id, metric, time, source);

CREATE TABLE consent_events (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id       uuid NOT NULL REFERENCES tenants(id),
  person_id       uuid NOT NULL REFERENCES people(id),
  data_type       text NOT NULL,
  purpose         text NOT NULL CHECK (purpose IN ('monitoring', 'outreach', 'research')),
  action          text NOT NULL CHECK (action IN ('grant', 'withdraw')),
  notice_version  text,
  app             text,
  actor           text NOT NULL DEFAULT 'self',
  valid_until     timestamptz,
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX consent_events_person ON consent_events (person_id, id);

-- Current consent, derived from the history by a trigger; the service only reads it.
CREATE TABLE consent_state (
  tenant_id    uuid NOT NULL,
  person_id    uuid NOT NULL REFERENCES people(id),
  data_type    text NOT NULL,
  purpose      text NOT NULL,
  granted      boolean NOT NULL,
  event_id     bigint NOT NULL REFERENCES consent_events(id),
  valid_until  timestamptz,
  updated_at   timestamptz NOT NULL,
  PRIMARY KEY (person_id, data_type, purpose)
);

CREATE FUNCTION consent_events_apply() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO consent_state AS s (tenant_id, person_id, data_type, purpose, granted, event_id, valid_until, updated_at)
  VALUES (NEW.tenant_id, NEW.person_id, NEW.data_type, NEW.purpose, NEW.action = 'grant', NEW.id,
          NEW.valid_until, NEW.created_at)
  ON CONFLICT (person_id, data_type, purpose) DO UPDATE
    SET granted = EXCLUDED.granted, event_id = EXCLUDED.event_id,
        valid_until = EXCLUDED.valid_until, updated_at = EXCLUDED.updated_at;
  RETURN NULL;
END $$;
CREATE TRIGGER consent_events_apply AFTER INSERT ON consent_events
  FOR EACH ROW EXECUTE FUNCTION consent_events_apply();

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER consent_events_append_only BEFORE UPDATE OR DELETE ON consent_events
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER consent_events_no_truncate BEFORE TRUNCATE ON consent_events
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

CREATE TABLE audit_log (
  id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id          uuid NOT NULL REFERENCES tenants(id),
  at                 timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor_kind         text NOT NULL CHECK (actor_kind IN ('staff', 'person', 'system', 'operator')),
  actor_id           text NOT NULL,
  action             text NOT NULL,
  subject_person_id  uuid,
  detail             jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at DESC);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Row-level security, forced even for the owner. A policyholder context (beidou.person_id set) narrows
-- every person-owned table to that person; staff tables are invisible to it.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_self ON tenants TO beidou_app USING (id = beidou_tenant());
-- Operators (the schema owner, running `beidou tenant add`) manage the tenant list itself.
CREATE POLICY operator_manage ON tenants TO CURRENT_USER USING (true) WITH CHECK (true);

ALTER TABLE people ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON people TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR id = beidou_person()));

ALTER TABLE staff ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON staff TO beidou_app
  USING (tenant_id = beidou_tenant() AND beidou_person() IS NULL)
  WITH CHECK (tenant_id = beidou_tenant() AND beidou_person() IS NULL);

ALTER TABLE sources ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON sources TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()));

ALTER TABLE readings ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON readings TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()));

ALTER TABLE consent_events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON consent_events TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()));

ALTER TABLE consent_state ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON consent_state TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()));
-- The trigger that maintains consent_state runs as the owner, under FORCE RLS as well.
CREATE POLICY maintained_by_trigger ON consent_state TO CURRENT_USER USING (true) WITH CHECK (true);

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON audit_log TO beidou_app
  USING (tenant_id = beidou_tenant() AND beidou_person() IS NULL)
  WITH CHECK (tenant_id = beidou_tenant());

GRANT SELECT ON tenants TO beidou_app;
GRANT SELECT, INSERT, UPDATE ON people, staff TO beidou_app;
GRANT SELECT, INSERT, UPDATE ON sources TO beidou_app;
GRANT SELECT, INSERT ON readings TO beidou_app;
GRANT SELECT, INSERT ON consent_events TO beidou_app;
GRANT SELECT ON consent_state TO beidou_app;
GRANT SELECT, INSERT ON audit_log TO beidou_app;
