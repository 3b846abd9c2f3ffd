-- Erasure (consent/erasure.py) deletes a person's detection, alert and outreach rows as the service role,
-- inside the person's row-level security context.
GRANT DELETE ON anomaly_events, detector_feedback, alerts, alert_evidence, alert_timeline,
                notifications, notification_deliveries TO beidou_app;
