-- Duties only one server replica may do at a time (the rule engine: evaluation and
-- notifications): who holds each, and until when (milliseconds since the epoch). A holder
-- renews before expiry; another replica takes an expired lease.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
