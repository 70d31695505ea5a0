-- Labels of custom events posted to the API.
ALTER TABLE events ADD COLUMN tags TEXT;

-- Alerts: one row per (rule, group), updated as it moves pending -> firing -> resolved.
CREATE TABLE alerts (
    id               BIGSERIAL PRIMARY KEY,
    rule             TEXT    NOT NULL,
    group_key        TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    severity         TEXT    NOT NULL,
    labels           TEXT    NOT NULL,
    summary          TEXT    NOT NULL,
    value            DOUBLE PRECISION NOT NULL,
    active_since     BIGINT NOT NULL,
    fired_at         BIGINT,
    resolved_at      BIGINT,
    last_notified_at BIGINT,
    updated_at       BIGINT NOT NULL,
    UNIQUE (rule, group_key, active_since)
);
CREATE INDEX alerts_state ON alerts (state, updated_at);

-- Silences: alerts whose labels match are not notified until the silence ends.
CREATE TABLE silences (
    id         BIGSERIAL PRIMARY KEY,
    matchers   TEXT    NOT NULL,
    comment    TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    starts_at  BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL
);

-- Capture requests an alert's action made, for the node agent to fulfil.
CREATE TABLE capture_requests (
    id           BIGSERIAL PRIMARY KEY,
    alert_id     BIGINT,
    namespace    TEXT    NOT NULL,
    pod          TEXT    NOT NULL,
    container    TEXT,
    duration_ms  BIGINT NOT NULL,
    state        TEXT    NOT NULL,
    requested_at BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    capture      TEXT
);
CREATE INDEX capture_requests_state ON capture_requests (state, requested_at);

-- Captures written by the flight recorder or on request.
CREATE TABLE captures (
    id          BIGSERIAL PRIMARY KEY,
    path        TEXT    NOT NULL UNIQUE,
    namespace   TEXT,
    pod         TEXT,
    container   TEXT,
    restart     BIGINT,
    window_from BIGINT NOT NULL,
    window_to   BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    events      BIGINT NOT NULL,
    drops       BIGINT NOT NULL,
    reason      TEXT    NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX captures_pod ON captures (namespace, pod, created_at);
