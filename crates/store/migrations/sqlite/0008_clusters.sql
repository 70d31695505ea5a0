-- Several clusters feed one store: the cluster of each event, pod state and restart (NULL
-- where the source names none, as before), so that filters can select one and nothing of
-- two clusters is ever merged — a pod of the same name, even the same uid, in two clusters
-- is two pods.
ALTER TABLE events ADD COLUMN cluster TEXT;
ALTER TABLE pod_states ADD COLUMN cluster TEXT;
ALTER TABLE restart_samples ADD COLUMN cluster TEXT;
CREATE INDEX events_cluster_feed ON events (cluster, last_seen DESC, id DESC);
ALTER TABLE captures ADD COLUMN cluster TEXT;
