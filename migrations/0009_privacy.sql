-- Privacy where staff look and people answer: ONE consent-in-force check, a person's own access log,
-- break-the-glass looks, requests for help that carry no health data.

-- Consent in force: the person is not erased, the purpose is granted and not past its valid_until, and so is
-- every purpose it needs (outreach and research need monitoring of the same data type: consent.catalog.NEEDS).
-- Every path asks this one function (consent.repository.in_force / types_in_force / in_force_event): ingest,
-- detection, alerts, pushes, staff reads, live feeds. It runs as the caller, under its row-level security.
CREATE FUNCTION beidou_consent_in_force(person uuid, data_type text, purpose text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = public, pg_temp AS
$$ SELECT count(*) = CASE WHEN $3 = 'monitoring' THEN 1 ELSE 2 END
     FROM consent_state s JOIN people p ON p.id = s.person_id
    WHERE s.person_id = $1 AND s.data_type = $2 AND s.purpose IN ($3, 'monitoring')
      AND s.granted AND (s.valid_until IS NULL OR s.valid_until > now()) AND p.erased_at IS NULL $$;
REVOKE ALL ON FUNCTION beidou_consent_in_force(uuid, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION beidou_consent_in_force(uuid, text, text) TO beidou_app;

-- "Who looked at my data": a person reads the staff looks at their own data, in their own context.
CREATE POLICY own_access_log ON audit_log FOR SELECT TO beidou_app
  USING (tenant_id = beidou_tenant() AND beidou_person() IS NOT NULL AND subject_person_id = beidou_person()
         AND actor_kind = 'staff');
CREATE INDEX audit_log_subject ON audit_log (subject_person_id, id DESC) WHERE subject_person_id IS NOT NULL;

-- An insurer may choose to show its staff members' ids in people's access logs (default: the role only).
ALTER TABLE tenants ADD COLUMN access_log_names_staff boolean NOT NULL DEFAULT false;

-- A person's explicit request for help after the health data behind an alert was withdrawn: a queue item of
-- its own that carries no health data.
ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check CHECK (kind IN ('health', 'data_gap', 'help_request'));
