-- The data types the service accepts, as a lookup table: the database's copy of app/core/datatypes.py
-- (a test checks the two agree). Readings and consent events reference it, so adding a data type is one
-- registry entry plus a migration that inserts its row here; no CHECK lists the types any more.
CREATE TABLE data_types (
  name  text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  unit  text NOT NULL    -- the canonical unit values of this type are stored in
);
INSERT INTO data_types (name, unit) VALUES
  ('heart_rate', 'bpm'),
  ('resting_heart_rate', 'bpm'),
  ('hrv_rmssd', 'ms'),
  ('steps', 'count'),
  ('sleep', 'min'),
  ('spo2', '%'),
  ('blood_pressure', 'mmHg'),
  ('glucose', 'mg/dL'),
  ('body_temperature', '°C'),
  ('respiratory_rate', '/min'),
  ('hrv_sdnn', 'ms');

-- Public metadata: every tenant reads the same rows; only migrations (the owner) write them.
ALTER TABLE data_types ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY readable ON data_types TO beidou_app USING (true);
CREATE POLICY maintained_by_migrations ON data_types TO CURRENT_USER USING (true) WITH CHECK (true);
GRANT SELECT ON data_types TO beidou_app;

ALTER TABLE readings DROP CONSTRAINT readings_metric_check;
ALTER TABLE readings ADD CONSTRAINT readings_metric_fkey FOREIGN KEY (metric) REFERENCES data_types (name);
ALTER TABLE consent_events ADD CONSTRAINT consent_events_data_type_fkey
  FOREIGN KEY (data_type) REFERENCES data_types (name);
