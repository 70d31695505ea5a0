-- Feed filters by workload and pod walk these instead of the whole feed.
CREATE INDEX events_workload_feed ON events (workload_name, last_seen DESC, id DESC);
DROP INDEX events_pod;
CREATE INDEX events_pod_feed ON events (namespace, pod, last_seen DESC, id DESC);
