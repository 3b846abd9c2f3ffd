-- Compacting the hot table's day-chunk indexes once their day has closed.
--
-- Readings of many people arriving together insert all over a day chunk's unique index: each person's readings
-- go to the end of that person's key range, the page there splits in two, and the left half is never filled
-- again. A closed day's index is then about 60 bytes per reading where a fresh build is about 41. The operator's
-- role rebuilds such an index with REINDEX INDEX CONCURRENTLY (it needs the chunk's owner and a session outside
-- a transaction, so the service role cannot); this table is its memory: what each rebuild left, so an index is
-- rebuilt again only when late readings have loosened it since. Kept beside the migrations' record, out of
-- the service role's reach (only the owner rebuilds).
CREATE TABLE beidou_meta.hot_index_compactions (
  index_name        text PRIMARY KEY,            -- schema-qualified name of the chunk's index (kept by a rebuild)
  range_start       timestamptz NOT NULL,        -- the chunk's day
  range_end         timestamptz NOT NULL,
  bytes_before      bigint NOT NULL,
  bytes_after       bigint NOT NULL,
  rows_at           double precision NOT NULL,   -- the chunk's row estimate when rebuilt (pg_class.reltuples)
  rebuilds          integer NOT NULL DEFAULT 1,
  compacted_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE beidou_meta.hot_index_compactions IS
  'Rebuilds of closed hot day-chunk indexes (beidou db compact, or the scheduler given the owner''s URL).';
