-- Outreach: devices that receive pushes, each delivery attempt, the person's answer, quiet hours.

CREATE TABLE devices (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id     uuid NOT NULL REFERENCES tenants(id),
  person_id     uuid REFERENCES people(id) ON DELETE CASCADE,
  staff_id      uuid REFERENCES staff(id),
  provider      text NOT NULL DEFAULT 'fcm',
  token         text NOT NULL CHECK (length(token) BETWEEN 1 AND 4096),
  token_kind    text NOT NULL DEFAULT 'registration' CHECK (token_kind IN ('registration', 'installation')),
  platform      text NOT NULL CHECK (platform IN ('android', 'ios', 'web')),
  app_version   text,
  language      text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_seen     timestamptz NOT NULL DEFAULT now(),
  disabled_at   timestamptz,
  disabled_reason text,
  CHECK ((person_id IS NULL) <> (staff_id IS NULL)),
  UNIQUE (tenant_id, provider, token)
);
CREATE INDEX devices_person ON devices (person_id) WHERE disabled_at IS NULL;
CREATE INDEX devices_staff ON devices (staff_id) WHERE disabled_at IS NULL;

ALTER TABLE notifications
  ADD COLUMN opened_at  timestamptz,
  ADD COLUMN answer     text CHECK (answer IN ('fine', 'help', 'call')),
  ADD COLUMN answered_at timestamptz,
  ADD COLUMN held_reason text;

CREATE TABLE notification_deliveries (
  id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  notification_id      uuid NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
  device_id            uuid REFERENCES devices(id) ON DELETE SET NULL,
  tenant_id            uuid NOT NULL,
  person_id            uuid,
  attempt              integer NOT NULL,
  ok                   boolean NOT NULL,
  provider_message_id  text,
  error_code           text,
  detail               text,
  at                   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_deliveries_notification ON notification_deliveries (notification_id, id);

ALTER TABLE people
  ADD COLUMN quiet_start time NOT NULL DEFAULT '22:00',
  ADD COLUMN quiet_end   time NOT NULL DEFAULT '08:00';

ALTER TABLE devices ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON devices TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()));

ALTER TABLE notification_deliveries ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON notification_deliveries TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()));

GRANT SELECT, INSERT, UPDATE, DELETE ON devices TO beidou_app;
GRANT SELECT, INSERT ON notification_deliveries TO beidou_app;
