-- Retention: TimescaleDB's Apache edition has no retention policies, so the scheduler calls this.
-- SECURITY DEFINER: the service role may drop old chunks this way and no other.
CREATE FUNCTION beidou_drop_old_readings(keep_days integer) RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE dropped integer;
BEGIN
  IF keep_days IS NULL OR keep_days < 1 THEN
    RAISE EXCEPTION 'keep_days must be at least 1';
  END IF;
  SELECT count(*) INTO dropped FROM drop_chunks('readings', older_than => now() - make_interval(days => keep_days));
  RETURN dropped;
END $$;
REVOKE ALL ON FUNCTION beidou_drop_old_readings(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION beidou_drop_old_readings(integer) TO beidou_app;
