-- "Warning or worse" reads one newest-first walk per severity.
CREATE INDEX events_severity_feed ON events (severity_rank, last_seen DESC, id DESC);
