-- Detection: which people have new readings, each person's detector state, and the events it emitted.
--
-- Ingest appends a row to detection_work per person in the same transaction as the readings (append
-- only: concurrent ingest commits never wait on each other's row locks); the worker deletes the rows it
-- has seen in the same transaction as the detector state it saves.

-- Background workers serve every insurer but may only ever work inside one tenant's context at a time:
-- this lists tenant ids (nothing else) so they know which contexts to visit.
CREATE FUNCTION beidou_tenant_ids() RETURNS SETOF uuid LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp AS $$ SELECT id FROM tenants ORDER BY id $$;
REVOKE ALL ON FUNCTION beidou_tenant_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION beidou_tenant_ids() TO beidou_app;

CREATE TABLE detection_work (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id   uuid NOT NULL,
  person_id   uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX detection_work_person ON detection_work (person_id, id);

CREATE TABLE detector_state (
  person_id      uuid PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
  tenant_id      uuid NOT NULL,
  state_version  integer NOT NULL,
  state          bytea NOT NULL,
  cursor_time    timestamptz,              -- newest reading time fed to the detector
  readings_seen  bigint NOT NULL DEFAULT 0,
  updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE anomaly_events (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id   uuid NOT NULL,
  person_id   uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
  kind        text NOT NULL CHECK (kind IN ('health', 'data_gap')),
  feature     text NOT NULL,
  metric      text NOT NULL,
  tier        text NOT NULL CHECK (tier IN ('watch', 'alert')),
  start_time  timestamptz NOT NULL,
  end_time    timestamptz NOT NULL,
  value       double precision,
  baseline    double precision,
  reason      text NOT NULL,
  source_received_at timestamptz,           -- when the reading that revealed it reached us (latency)
  created_at  timestamptz NOT NULL DEFAULT now(),
  handled_at  timestamptz,                  -- set by the alerting layer once it has acted on the event
  UNIQUE (person_id, feature, kind, tier, start_time)
);
CREATE INDEX anomaly_events_unhandled ON anomaly_events (tenant_id, id) WHERE handled_at IS NULL;

ALTER TABLE detection_work ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON detection_work TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()));

ALTER TABLE detector_state ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON detector_state TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()));

ALTER TABLE anomaly_events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON anomaly_events TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()));

GRANT SELECT, INSERT, DELETE ON detection_work TO beidou_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON detector_state TO beidou_app;
GRANT SELECT, INSERT, UPDATE ON anomaly_events TO beidou_app;
