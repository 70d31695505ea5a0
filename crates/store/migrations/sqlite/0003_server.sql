-- Labels of custom events posted to the API.
ALTER TABLE events ADD COLUMN tags TEXT;

-- Alerts: one row per (rule, group), updated as it moves pending -> firing -> resolved.
CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    rule             TEXT    NOT NULL,
    group_key        TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    severity         TEXT    NOT NULL,
    labels           TEXT    NOT NULL,
    summary          TEXT    NOT NULL,
    value            DOUBLE PRECISION NOT NULL,
    active_since     INTEGER NOT NULL,
    fired_at         INTEGER,
    resolved_at      INTEGER,
    last_notified_at INTEGER,
    updated_at       INTEGER NOT NULL,
    UNIQUE (rule, group_key, active_since)
);
CREATE INDEX alerts_state ON alerts (state, updated_at);

-- Silences: alerts whose labels match are not notified until the silence ends.
CREATE TABLE silences (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    matchers   TEXT    NOT NULL,
    comment    TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL
);

-- Capture requests an alert's action made, for the node agent to fulfil.
CREATE TABLE capture_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id     INTEGER,
    namespace    TEXT    NOT NULL,
    pod          TEXT    NOT NULL,
    container    TEXT,
    duration_ms  INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    requested_at INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    capture      TEXT
);
CREATE INDEX capture_requests_state ON capture_requests (state, requested_at);

-- Captures written by the flight recorder or on request.
CREATE TABLE captures (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    path        TEXT    NOT NULL UNIQUE,
    namespace   TEXT,
    pod         TEXT,
    container   TEXT,
    restart     INTEGER,
    window_from INTEGER NOT NULL,
    window_to   INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    drops       INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX captures_pod ON captures (namespace, pod, created_at);
