-- Consent centre: guardians for people under 14, erasure tombstones, who acted on a consent and why,
-- and what the service role needs to erase a person's data.
--
-- Touches only tables from 0001 and its own, so it applies on top of 0001 alone or after any 0002.

-- A person whose data was erased keeps a tombstone row: the consent history and the audit log still point
-- at it, and a token with the same external id finds the tombstone instead of becoming someone new.
ALTER TABLE people ADD COLUMN erased_at timestamptz;

-- Who acted when a guardian did (actor = 'guardian'), and why the system did (actor = 'system':
-- 'expired', 'under_14', 'erasure').
ALTER TABLE consent_events ADD COLUMN actor_person_id uuid REFERENCES people(id);
ALTER TABLE consent_events ADD COLUMN reason text;

-- A guardian is another policyholder of the same insurer; the insurer's tenant_admin links them.
CREATE TABLE guardianships (
  tenant_id    uuid NOT NULL REFERENCES tenants(id),
  guardian_id  uuid NOT NULL REFERENCES people(id),
  minor_id     uuid NOT NULL REFERENCES people(id),
  created_by   text NOT NULL,                 -- staff external id of the tenant_admin who linked them
  created_at   timestamptz NOT NULL DEFAULT now(),
  ended_at     timestamptz,
  PRIMARY KEY (guardian_id, minor_id),
  CHECK (guardian_id <> minor_id)
);
CREATE INDEX guardianships_minor ON guardianships (minor_id);

ALTER TABLE guardianships ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON guardianships TO beidou_app
  USING (tenant_id = beidou_tenant()
         AND (beidou_person() IS NULL OR guardian_id = beidou_person() OR minor_id = beidou_person()))
  WITH CHECK (tenant_id = beidou_tenant()
              AND (beidou_person() IS NULL OR guardian_id = beidou_person() OR minor_id = beidou_person()));

-- The people the current person is an active guardian of (none outside a person context).
CREATE FUNCTION beidou_dependants() RETURNS SETOF uuid LANGUAGE sql STABLE
SET search_path = public, pg_temp AS
$$ SELECT g.minor_id FROM guardianships g
    WHERE g.guardian_id = beidou_person() AND g.tenant_id = beidou_tenant() AND g.ended_at IS NULL $$;

-- A guardian's context reaches a dependant's profile and consent rows, and may append consent events for
-- them only as actor 'guardian' naming itself. Nothing else of the dependant (readings, sources) is visible.
CREATE POLICY guardian_reads ON people FOR SELECT TO beidou_app
  USING (tenant_id = beidou_tenant() AND id IN (SELECT beidou_dependants()));
CREATE POLICY guardian_reads ON consent_state FOR SELECT TO beidou_app
  USING (tenant_id = beidou_tenant() AND person_id IN (SELECT beidou_dependants()));
CREATE POLICY guardian_reads ON consent_events FOR SELECT TO beidou_app
  USING (tenant_id = beidou_tenant() AND person_id IN (SELECT beidou_dependants()));
CREATE POLICY guardian_acts ON consent_events FOR INSERT TO beidou_app
  WITH CHECK (tenant_id = beidou_tenant() AND actor = 'guardian' AND actor_person_id = beidou_person()
              AND person_id IN (SELECT beidou_dependants()));
-- Nobody else may write an event claiming a guardian acted, not even in the dependant's own context.
CREATE POLICY only_guardians_act_as_guardian ON consent_events AS RESTRICTIVE FOR INSERT TO beidou_app
  WITH CHECK (actor <> 'guardian'
              OR (actor_person_id = beidou_person() AND person_id IN (SELECT beidou_dependants())));

-- Under 14 a grant must come from a guardian, and an erased person is granted nothing. The service checks
-- first and explains; this keeps it true for any other writer. Runs as the caller, under its RLS context.
CREATE FUNCTION consent_events_check_grant() RETURNS trigger LANGUAGE plpgsql
SET search_path = public, pg_temp AS $$
DECLARE
  p record;
BEGIN
  IF NEW.action <> 'grant' THEN
    RETURN NEW;
  END IF;
  SELECT birth_date, time_zone, erased_at INTO p FROM people WHERE id = NEW.person_id;
  IF FOUND AND p.erased_at IS NOT NULL THEN
    RAISE EXCEPTION 'consent refused: this person''s data was erased' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF FOUND AND NEW.actor = 'self' AND p.birth_date IS NOT NULL
     AND p.birth_date > (now() AT TIME ZONE p.time_zone)::date - interval '14 years' THEN
    RAISE EXCEPTION 'consent refused: a person under 14 needs a guardian''s grant'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER consent_events_check_grant BEFORE INSERT ON consent_events
  FOR EACH ROW EXECUTE FUNCTION consent_events_check_grant();

-- Grants past their valid_until, across tenants, so one sweep can record and announce each expiry in the
-- owning tenant's own transaction. Reveals ids only; the service role cannot list tenants otherwise.
CREATE INDEX consent_state_expiring ON consent_state (valid_until) WHERE granted AND valid_until IS NOT NULL;
CREATE FUNCTION consent_due_expiries(max_rows integer)
RETURNS TABLE (tenant_id uuid, person_id uuid, data_type text, purpose text, event_id bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$ SELECT s.tenant_id, s.person_id, s.data_type, s.purpose, s.event_id FROM consent_state s
    WHERE s.granted AND s.valid_until <= now() ORDER BY s.valid_until LIMIT max_rows $$;
REVOKE ALL ON FUNCTION consent_due_expiries(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION consent_due_expiries(integer) TO beidou_app;

-- Erasure deletes a person's rows through these tables in a transaction scoped to that person, so the
-- isolation policies narrow every DELETE to them. Consent history and the audit log stay append-only.
GRANT DELETE ON readings, sources TO beidou_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON guardianships TO beidou_app;
