-- The feed is read newest first by (last_seen, id); one index serves the order and the cursor.
DROP INDEX events_last_seen;
CREATE INDEX events_feed ON events (last_seen DESC, id DESC);
CREATE INDEX events_namespace_feed ON events (namespace, last_seen DESC, id DESC);
