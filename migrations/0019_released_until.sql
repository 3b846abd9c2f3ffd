-- How far the watermark has ever let the detector read for a person. A re-score (a record replaced or
-- deleted, late data) runs in passes; each pass reads again up to here without waiting for a stream that
-- now looks behind: what was scored once is scored again in full, not held for days because the readings
-- that held the watermark open were the ones deleted.
ALTER TABLE detector_state ADD COLUMN released_until timestamptz;
UPDATE detector_state SET released_until = cursor_time;
