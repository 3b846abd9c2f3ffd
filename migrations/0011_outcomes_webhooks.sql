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
CREATE INDEX notifications_tenant_created ON notifications (tenant_id, created_at);

ALTER TABLE notification_deliveries ADD COLUMN provider text;

-- Outcomes: alerts by opening time; the few timeline actions the funnel reads, by time.
CREATE INDEX alerts_tenant_opened ON alerts (tenant_id, opened_at)
  INCLUDE (id, feature, severity, claimed_at, resolved_at, resolution, assignee_id, kind);
CREATE INDEX alert_timeline_outcomes ON alert_timeline (tenant_id, at) INCLUDE (alert_id, action, actor_kind, actor_id, detail)
  WHERE action IN ('contact', 'reach_out', 'person_replied', 'escalated', 'resolve');
CREATE INDEX consent_events_tenant_created ON consent_events (tenant_id, created_at);
CREATE INDEX notification_deliveries_tenant_at ON notification_deliveries (tenant_id, at);

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
