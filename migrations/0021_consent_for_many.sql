-- Consent in force for many people at once: what ingest asks in every transaction it commits (a hundred people
-- or more). The rule stays in one place: the per-person check is now a member test of this set.
-- No SET clause and schema-qualified names, so PostgreSQL inlines it into the calling query; a function with a
-- SET clause is called once per row instead (about 30 µs each: most of ingest's consent cost).
CREATE FUNCTION beidou_consents_in_force(people uuid[], purpose text)
RETURNS TABLE (person_id uuid, data_type text) LANGUAGE sql STABLE AS
$$ SELECT u.id, c.data_type
     FROM unnest($1) AS u(id),
          LATERAL (SELECT s.data_type
                     FROM public.consent_state s JOIN public.people p ON p.id = s.person_id
                    WHERE s.person_id = u.id AND p.id = u.id AND s.purpose IN ($2, 'monitoring') AND s.granted
                      AND (s.valid_until IS NULL OR s.valid_until > pg_catalog.now()) AND p.erased_at IS NULL
                    GROUP BY s.data_type
                   HAVING count(*) = CASE WHEN $2 = 'monitoring' THEN 1 ELSE 2 END) AS c $$;
REVOKE ALL ON FUNCTION beidou_consents_in_force(uuid[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION beidou_consents_in_force(uuid[], text) TO beidou_app;

CREATE OR REPLACE FUNCTION beidou_consent_in_force(person uuid, data_type text, purpose text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = public, pg_temp AS
$$ SELECT EXISTS (SELECT FROM beidou_consents_in_force(ARRAY[$1], $3) c WHERE c.data_type = $2) $$;
