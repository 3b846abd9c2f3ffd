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

-- A person past the sources limit is told apart from other check failures by the constraint name the error
-- carries (app.core.errors.TooManySources.raised_by), not by the wording of its message.
CREATE OR REPLACE FUNCTION sources_number() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE next_no integer;
BEGIN
  IF NEW.source_no IS NULL THEN
    SELECT source_no INTO NEW.source_no FROM sources WHERE person_id = NEW.person_id AND source = NEW.source;
    IF FOUND THEN
      RETURN NEW;  -- the upsert's conflict path: the stored row keeps its number
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('beidou.sources:' || NEW.person_id::text, 0));
    SELECT coalesce(max(source_no), 0) + 1 INTO next_no FROM sources WHERE person_id = NEW.person_id;
    IF next_no > 32767 THEN
      RAISE EXCEPTION 'a person has at most 32767 sources'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'sources_per_person';
    END IF;
    NEW.source_no := next_no;
  END IF;
  RETURN NEW;
END $$;
