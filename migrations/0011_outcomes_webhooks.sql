-- Outcomes, signed webhooks to the insurer's systems, and push providers beyond FCM.
--
-- * The insurer's time zone (outcomes are bucketed in it).
-- * A device's push provider is one we can send through: fcm, or gateway (the insurer's own push gateway).
-- * Webhook endpoints per tenant, with a secret and, during a rotation, the previous secret until a deadline.
-- * Webhook events leave through the notification outbox (recipient_kind 'webhook'), ordered per subject by seq.
-- * consent.changed is queued by a trigger on consent_events, so every path that changes consent emits it in
--   its own transaction.
-- * Indexes for the outcomes report (per tenant and time).

ALTER TABLE tenants ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';

ALTER TABLE devices ADD CONSTRAINT devices_provider_known CHECK (provider IN ('fcm', 'gateway'));

CREATE TABLE webhook_endpoints (
  id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id              uuid NOT NULL REFERENCES tenants(id),
  url                    text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
  events                 text[] NOT NULL CHECK (cardinality(events) >= 1 AND events <@ ARRAY['alert.opened',
                           'alert.claimed', 'alert.contacted', 'alert.resolved', 'member.replied', 'consent.changed']),
  description            text CHECK (length(description) <= 500),
  include_health_values  boolean NOT NULL DEFAULT false,
  enabled                boolean NOT NULL DEFAULT true,
  secret                 text NOT NULL,
  previous_secret        text,
  previous_secret_until  timestamptz,
  created_by             text NOT NULL,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id);

ALTER TABLE notifications
  ADD COLUMN endpoint_id uuid REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  ADD COLUMN order_key   text,
  ADD COLUMN payload     jsonb,
  ADD COLUMN seq         bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE notifications
  DROP CONSTRAINT notifications_recipient_kind_check,
  ADD CONSTRAINT notifications_recipient_kind_check CHECK (recipient_kind IN ('person', 'staff', 'webhook')),
  DROP CONSTRAINT notifications_check,
  ADD CONSTRAINT notifications_recipient CHECK (
       (recipient_kind = 'person' AND person_id IS NOT NULL AND staff_id IS NULL AND endpoint_id IS NULL)
    OR (recipient_kind = 'staff' AND staff_id IS NOT NULL AND person_id IS NULL AND endpoint_id IS NULL)
    OR (recipient_kind = 'webhook' AND endpoint_id IS NOT NULL AND person_id IS NULL AND staff_id IS NULL
        AND order_key IS NOT NULL AND payload IS NOT NULL));
-- "Is an earlier event for this endpoint and subject still pending?" (ordered delivery).
CREATE INDEX notifications_webhook_order ON notifications (endpoint_id, order_key, seq)
  WHERE status IN ('queued', 'held', 'sending');
CREATE INDEX notifications_endpoint ON notifications (endpoint_id, seq) WHERE endpoint_id IS NOT NULL;
CREATE INDEX notifications_tenant_created ON notifications (tenant_id, created_at);  -- outcomes: pushes

-- Each delivery attempt names the provider that carried it (webhook for events to the insurer's systems).
-- The outbox row keeps a summary of its attempts (attempted at all, delivered by any, by which provider),
-- maintained by a trigger on the attempts and backfilled from them, so the outcomes report reads one table.
ALTER TABLE notification_deliveries ADD COLUMN provider text;
UPDATE notification_deliveries x SET provider = d.provider FROM devices d WHERE d.id = x.device_id;
ALTER TABLE notifications
  ADD COLUMN attempted          boolean NOT NULL DEFAULT false,
  ADD COLUMN delivered          boolean NOT NULL DEFAULT false,
  ADD COLUMN delivery_provider  text;
UPDATE notifications n SET attempted = true, delivered = d.ok, delivery_provider = d.provider
  FROM (SELECT notification_id, bool_or(ok) AS ok,
               coalesce(min(provider) FILTER (WHERE ok), min(provider)) AS provider
          FROM notification_deliveries GROUP BY notification_id) d
 WHERE d.notification_id = n.id;

CREATE FUNCTION notification_deliveries_summary() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE notifications
     SET attempted = true,
         delivery_provider = CASE WHEN NEW.ok AND NOT delivered THEN NEW.provider
                                  ELSE coalesce(delivery_provider, NEW.provider) END,
         delivered = delivered OR NEW.ok
   WHERE id = NEW.notification_id;
  RETURN NULL;
END $$;
CREATE TRIGGER notification_deliveries_summary AFTER INSERT ON notification_deliveries
  FOR EACH ROW EXECUTE FUNCTION notification_deliveries_summary();

-- Outcomes. The timeline is the record; the first contact, the member's first answer and the number of
-- escalations that fired are kept on the alert by a trigger on the timeline (and backfilled from it here), so
-- the report reads one index over alerts by opening time instead of aggregating the timeline on every request.
ALTER TABLE alerts
  ADD COLUMN first_contact_at  timestamptz,
  ADD COLUMN first_answer_at   timestamptz,
  ADD COLUMN first_answer      text,
  ADD COLUMN escalations_fired integer NOT NULL DEFAULT 0;
UPDATE alerts a SET first_contact_at = t.first_contact, first_answer_at = t.first_answer_at,
                    first_answer = t.first_answer, escalations_fired = t.escalations
  FROM (SELECT alert_id,
               min(at) FILTER (WHERE action IN ('contact', 'reach_out')) AS first_contact,
               min(at) FILTER (WHERE action = 'person_replied') AS first_answer_at,
               (array_agg(detail->>'answer' ORDER BY at, id) FILTER (WHERE action = 'person_replied'))[1]
                 AS first_answer,
               count(*) FILTER (WHERE action = 'escalated') AS escalations
          FROM alert_timeline WHERE action IN ('contact', 'reach_out', 'person_replied', 'escalated')
         GROUP BY alert_id) t
 WHERE t.alert_id = a.id;

CREATE FUNCTION alert_timeline_outcomes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.action IN ('contact', 'reach_out') THEN
    UPDATE alerts SET first_contact_at = NEW.at
     WHERE id = NEW.alert_id AND (first_contact_at IS NULL OR first_contact_at > NEW.at);
  ELSIF NEW.action = 'person_replied' THEN
    UPDATE alerts SET first_answer_at = NEW.at, first_answer = NEW.detail->>'answer'
     WHERE id = NEW.alert_id AND (first_answer_at IS NULL OR first_answer_at > NEW.at);
  ELSIF NEW.action = 'escalated' THEN
    UPDATE alerts SET escalations_fired = escalations_fired + 1 WHERE id = NEW.alert_id;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER alert_timeline_outcomes AFTER INSERT ON alert_timeline FOR EACH ROW
  WHEN (NEW.action IN ('contact', 'reach_out', 'person_replied', 'escalated'))
  EXECUTE FUNCTION alert_timeline_outcomes();

CREATE INDEX alerts_tenant_opened ON alerts (tenant_id, opened_at)
  INCLUDE (person_id, feature, severity, claimed_at, resolved_at, resolution, assignee_id, first_contact_at,
           first_answer_at, first_answer, escalations_fired);
CREATE INDEX consent_events_tenant_created ON consent_events (tenant_id, created_at);

ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON webhook_endpoints TO beidou_app
  USING (tenant_id = beidou_tenant() AND beidou_person() IS NULL)
  WITH CHECK (tenant_id = beidou_tenant() AND beidou_person() IS NULL);
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints TO beidou_app;

-- consent.changed: the trigger runs as the schema owner (a policyholder's own transaction cannot see the
-- insurer's endpoints), so the owner may read endpoints and people, and add outbox rows, for it.
CREATE POLICY consent_webhooks ON webhook_endpoints FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY consent_webhooks ON people FOR SELECT TO CURRENT_USER USING (true);
CREATE POLICY consent_webhooks ON notifications FOR INSERT TO CURRENT_USER WITH CHECK (recipient_kind = 'webhook');

CREATE FUNCTION consent_events_webhooks() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
  queued integer;
BEGIN
  INSERT INTO notifications (tenant_id, recipient_kind, endpoint_id, purpose, order_key, payload)
  SELECT NEW.tenant_id, 'webhook', w.id, 'consent.changed', 'person:' || NEW.person_id,
         jsonb_build_object('type', 'consent.changed', 'timestamp', to_jsonb(NEW.created_at),
           'data', jsonb_build_object('person', p.external_id, 'data_type', NEW.data_type, 'purpose', NEW.purpose,
                                      'granted', NEW.action = 'grant', 'actor', NEW.actor,
                                      'valid_until', NEW.valid_until, 'consent_event_id', NEW.id))
    FROM webhook_endpoints w JOIN people p ON p.id = NEW.person_id
   WHERE w.tenant_id = NEW.tenant_id AND w.enabled AND 'consent.changed' = ANY(w.events);
  GET DIAGNOSTICS queued = ROW_COUNT;
  IF queued > 0 THEN
    PERFORM pg_notify('beidou_outbox', NEW.tenant_id::text);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER consent_events_webhooks AFTER INSERT ON consent_events
  FOR EACH ROW EXECUTE FUNCTION consent_events_webhooks();
