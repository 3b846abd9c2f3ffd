-- Alerts and the care team's work: alerts with their evidence and timeline, per-tenant escalation
-- policies (copied into each alert when it opens), staff on duty, the notification outbox, and
-- feedback from resolutions to the detector.

CREATE TABLE escalation_policies (
  tenant_id   uuid PRIMARY KEY REFERENCES tenants(id),
  policy      jsonb NOT NULL,
  updated_by  text,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE staff ADD COLUMN on_duty boolean NOT NULL DEFAULT false;

CREATE TABLE alerts (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id           uuid NOT NULL REFERENCES tenants(id),
  person_id           uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
  kind                text NOT NULL CHECK (kind IN ('health', 'data_gap')),
  feature             text NOT NULL,
  metric              text NOT NULL,
  tier                text NOT NULL CHECK (tier IN ('watch', 'alert')),
  severity            text NOT NULL CHECK (severity IN ('info', 'low', 'high', 'critical')),
  severity_rank       smallint NOT NULL,
  urgent              boolean NOT NULL DEFAULT false,  -- the person asked for help or a call
  status              text NOT NULL CHECK (status IN ('open', 'claimed', 'contacted', 'resolved')),
  summary             text NOT NULL,
  episode_start       timestamptz NOT NULL,
  episode_end         timestamptz NOT NULL,
  opened_at           timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  assignee_id         uuid REFERENCES staff(id),
  claimed_at          timestamptz,
  resolved_at         timestamptz,
  resolution          text CHECK (resolution IN ('needed_help', 'member_fine', 'false_alarm', 'no_response',
                                                 'consent_withdrawn')),
  resolution_note     text,
  consent_event_id    bigint REFERENCES consent_events(id),   -- the consent that permitted this alert
  policy              jsonb NOT NULL,                         -- escalation policy as it was at opening
  escalations_done    text[] NOT NULL DEFAULT '{}',
  next_escalation_at  timestamptz
);
-- One open alert per person and condition.
CREATE UNIQUE INDEX alerts_one_open ON alerts (person_id, kind, feature) WHERE status <> 'resolved';
CREATE INDEX alerts_queue ON alerts (tenant_id, status, severity_rank DESC, opened_at);
CREATE INDEX alerts_escalation_due ON alerts (next_escalation_at) WHERE next_escalation_at IS NOT NULL;

CREATE TABLE alert_evidence (
  alert_id          uuid NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
  anomaly_event_id  bigint NOT NULL REFERENCES anomaly_events(id) ON DELETE CASCADE,
  tenant_id         uuid NOT NULL,
  person_id         uuid NOT NULL,
  PRIMARY KEY (alert_id, anomaly_event_id)
);

-- Every transition and action on an alert: who, when, why. Append-only.
CREATE TABLE alert_timeline (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  alert_id    uuid NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
  tenant_id   uuid NOT NULL,
  person_id   uuid NOT NULL,
  at          timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor_kind  text NOT NULL CHECK (actor_kind IN ('staff', 'person', 'system')),
  actor_id    text NOT NULL,
  action      text NOT NULL,
  from_status text,
  to_status   text,
  detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_timeline_alert ON alert_timeline (alert_id, id);
CREATE TRIGGER alert_timeline_append_only BEFORE UPDATE ON alert_timeline
  FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Notifications to people and staff, written in the same transaction as the action that causes them.
CREATE TABLE notifications (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id       uuid NOT NULL REFERENCES tenants(id),
  recipient_kind  text NOT NULL CHECK (recipient_kind IN ('person', 'staff')),
  person_id       uuid REFERENCES people(id) ON DELETE CASCADE,
  staff_id        uuid REFERENCES staff(id),
  alert_id        uuid REFERENCES alerts(id) ON DELETE CASCADE,
  purpose         text NOT NULL,           -- check_in, escalation, reconnect, ...
  metric          text,                    -- data type the alert is about (consent re-check)
  critical        boolean NOT NULL DEFAULT false,
  status          text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'held', 'sending', 'sent', 'failed', 'cancelled', 'opened', 'answered')),
  status_detail   text,
  not_before      timestamptz NOT NULL DEFAULT now(),
  attempts        integer NOT NULL DEFAULT 0,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CHECK ((recipient_kind = 'person') = (person_id IS NOT NULL AND staff_id IS NULL)
      OR (recipient_kind = 'staff' AND staff_id IS NOT NULL))
);
CREATE INDEX notifications_due ON notifications (not_before) WHERE status IN ('queued', 'held');
CREATE INDEX notifications_alert ON notifications (alert_id);

-- Resolutions that should change how a person's detector behaves; the worker applies them.
CREATE TABLE detector_feedback (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id   uuid NOT NULL,
  person_id   uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
  feature     text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('false_alarm')),
  until       timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  applied_at  timestamptz
);
CREATE INDEX detector_feedback_pending ON detector_feedback (person_id) WHERE applied_at IS NULL;

ALTER TABLE escalation_policies ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON escalation_policies TO beidou_app
  USING (tenant_id = beidou_tenant() AND beidou_person() IS NULL)
  WITH CHECK (tenant_id = beidou_tenant() AND beidou_person() IS NULL);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['alerts', 'alert_evidence', 'alert_timeline', 'detector_feedback'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', t);
    EXECUTE format($p$CREATE POLICY isolation ON %I TO beidou_app
      USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))
      WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))$p$, t);
  END LOOP;
END $$;

ALTER TABLE notifications ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON notifications TO beidou_app
  USING (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant() AND (beidou_person() IS NULL OR person_id = beidou_person()));

GRANT SELECT, INSERT, UPDATE ON escalation_policies TO beidou_app;
GRANT SELECT, INSERT, UPDATE ON alerts TO beidou_app;
GRANT SELECT, INSERT ON alert_evidence, alert_timeline TO beidou_app;
GRANT SELECT, INSERT, UPDATE ON notifications TO beidou_app;
GRANT SELECT, INSERT, UPDATE ON detector_feedback TO beidou_app;
