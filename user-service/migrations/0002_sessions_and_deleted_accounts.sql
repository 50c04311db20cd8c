-- Sessions: one per login. The access token (a short JWT) names its session;
-- the refresh token is opaque (`<session id>.<secret>`) and only the SHA-256
-- of its secret is kept. Rotation keeps
-- the hashes of the last superseded refresh tokens, so presenting one of
-- them again is recognised as reuse (a stolen token) and revokes the session.
CREATE TABLE sessions (
    id             TEXT        PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
    user_id        BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device         TEXT        NOT NULL DEFAULT '',
    client_addr    TEXT        NOT NULL DEFAULT '',
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    refresh_hash   BYTEA       NOT NULL,
    retired_hashes BYTEA[]     NOT NULL DEFAULT '{}',
    refresh_expires_at TIMESTAMPTZ NOT NULL,
    revoked_at     TIMESTAMPTZ,
    revoked_reason TEXT
);

-- "This user's sessions", live ones first.
CREATE INDEX sessions_user_id_idx ON sessions (user_id, revoked_at);

-- A deleted account keeps its row, without password or profile, so its
-- username is retired for good: nobody can register it and inherit what is
-- still keyed by it (DMs, messages in others' histories).
ALTER TABLE users ADD COLUMN deleted_at TIMESTAMPTZ;
