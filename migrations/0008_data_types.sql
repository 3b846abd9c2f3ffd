-- The data types the service accepts, as a lookup table: the database's copy of app/core/datatypes.py
-- (a test checks the two agree). Nothing lists the types by hand any more: consent events reference the
-- table, and readings are checked against it. Adding a data type is one registry entry plus a migration
-- that inserts its row here. Types are only ever added (a stored reading must keep its meaning).
CREATE TABLE data_types (
  name  text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  unit  text NOT NULL    -- the canonical unit values of this type are stored in
);
CREATE TRIGGER data_types_add_only BEFORE UPDATE OR DELETE ON data_types
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER data_types_no_truncate BEFORE TRUNCATE ON data_types
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Readings are the hot path: a foreign key costs an index lookup per row (about a quarter of the insert
-- step's throughput, measured on the ingest path), so readings.metric is checked by a function that holds
-- the table's names as a constant, which PostgreSQL inlines into the CHECK. A trigger rewrites the function
-- whenever a type is added, so the table stays the one list.
CREATE FUNCTION beidou_known_data_type(data_type text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT false $$;
CREATE FUNCTION data_types_refresh() RETURNS trigger LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  EXECUTE format('CREATE OR REPLACE FUNCTION public.beidou_known_data_type(data_type text) RETURNS boolean '
                 'LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
                 format('SELECT $1 = ANY (%L::text[])', (SELECT array_agg(name ORDER BY name) FROM data_types)));
  RETURN NULL;
END $$;
CREATE TRIGGER data_types_refresh AFTER INSERT ON data_types
  FOR EACH STATEMENT EXECUTE FUNCTION data_types_refresh();

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
ALTER TABLE readings ADD CONSTRAINT readings_metric_known CHECK (beidou_known_data_type(metric));
ALTER TABLE consent_events ADD CONSTRAINT consent_events_data_type_fkey
  FOREIGN KEY (data_type) REFERENCES data_types (name);
