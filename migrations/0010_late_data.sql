-- Late data: work rows say how far back a commit reached, the worker keeps detector checkpoints at window
-- boundaries to re-score from, and counts readings that came too late to be scored.

-- The oldest reading time of the commit that queued the work (NULL: only readings newer than the cursor).
-- Ingest fills it; a record sync that replaces or deletes readings inserts a row with the earliest time
-- the change touched. The worker re-scores from there, within the allowed lateness.
ALTER TABLE detection_work ADD COLUMN earliest_time timestamptz;

-- Readings stored but never scored: older than the allowed lateness behind the detector's position.
ALTER TABLE detector_state ADD COLUMN late_readings bigint NOT NULL DEFAULT 0;

-- Detector state as it stood at a local midnight: it holds exactly the readings before window_end.
-- The last couple of days' boundaries are kept; late readings restore the one at or before them.
CREATE TABLE detector_checkpoints (
  person_id      uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
  tenant_id      uuid NOT NULL,
  window_end     timestamptz NOT NULL,
  state_version  integer NOT NULL,
  state          bytea NOT NULL,
  readings_seen  bigint NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (person_id, window_end)
);

ALTER TABLE detector_checkpoints ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON detector_checkpoints TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()));
GRANT SELECT, INSERT, UPDATE, DELETE ON detector_checkpoints TO beidou_app;
