-- Events, deduplicated as the API server aggregates them: one row per occurrence key,
-- whose count and last_seen rise.
CREATE TABLE events (
    id            BIGSERIAL PRIMARY KEY,
    dedup_key     TEXT    NOT NULL UNIQUE,
    source        TEXT    NOT NULL,
    reporter      TEXT,
    reason        TEXT    NOT NULL,
    message       TEXT    NOT NULL,
    type          TEXT    NOT NULL,
    severity      TEXT    NOT NULL,
    severity_rank BIGINT NOT NULL,
    namespace     TEXT,
    node          TEXT,
    workload_kind TEXT,
    workload_name TEXT,
    pod           TEXT,
    container     TEXT,
    scope         TEXT    NOT NULL,
    involved      TEXT,
    count         BIGINT NOT NULL,
    first_seen    BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL,
    source_id     TEXT
);
CREATE INDEX events_last_seen ON events (last_seen DESC);
CREATE INDEX events_pod ON events (namespace, pod);

-- Pod states over time: a row each time a pod's state changes.
CREATE TABLE pod_states (
    id          BIGSERIAL PRIMARY KEY,
    namespace   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    uid         TEXT,
    observed_at BIGINT NOT NULL,
    phase       TEXT    NOT NULL,
    restarts    BIGINT NOT NULL,
    state       TEXT    NOT NULL
);
CREATE INDEX pod_states_pod ON pod_states (namespace, name, observed_at);

-- A sample each time a container's restart count rises (and a baseline when first seen).
CREATE TABLE restart_samples (
    id               BIGSERIAL PRIMARY KEY,
    namespace        TEXT    NOT NULL,
    pod              TEXT    NOT NULL,
    pod_uid          TEXT,
    container        TEXT    NOT NULL,
    container_kind   TEXT    NOT NULL,
    workload_kind    TEXT,
    workload_name    TEXT,
    observed_at      BIGINT NOT NULL,
    restart_count    BIGINT NOT NULL,
    last_reason      TEXT,
    last_exit_code   BIGINT,
    last_finished_at BIGINT
);
CREATE INDEX restart_samples_time ON restart_samples (observed_at);
CREATE INDEX restart_samples_pod ON restart_samples (namespace, pod, container);
