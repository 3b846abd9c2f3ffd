-- Detection algorithm: structured reasons on events and alerts, and the operating point each insurer chooses.

-- A reason as data (reason_code + details: signals with values, baselines, days, direction) so each edge can
-- render it in the reader's language; the English sentence stays in reason / summary as the fallback.
ALTER TABLE anomaly_events ADD COLUMN reason_code text NOT NULL DEFAULT 'feature_change',
                           ADD COLUMN details jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE alerts ADD COLUMN reason_code text NOT NULL DEFAULT 'feature_change',
                   ADD COLUMN details jsonb NOT NULL DEFAULT '{}'::jsonb;

-- The insurer's operating point: how sensitive the detector is for its people (low | standard | high).
-- No row = standard.
CREATE TABLE tenant_detection_settings (
  tenant_id        uuid PRIMARY KEY REFERENCES tenants(id),
  operating_point  text NOT NULL CHECK (operating_point IN ('low', 'standard', 'high')),
  updated_by       text,
  updated_at       timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE tenant_detection_settings ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON tenant_detection_settings TO beidou_app
  USING (tenant_id = beidou_tenant() AND beidou_person() IS NULL)
  WITH CHECK (tenant_id = beidou_tenant() AND beidou_person() IS NULL);
GRANT SELECT, INSERT, UPDATE ON tenant_detection_settings TO beidou_app;
