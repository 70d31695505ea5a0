-- Current Kubernetes objects, as an API server would hold them: what the user applied
-- ("desired", e.g. kind 'Deployment') and what the local runtime reports (kind 'Pod').
CREATE TABLE objects (
    kind       TEXT    NOT NULL,
    namespace  TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (kind, namespace, name)
);
