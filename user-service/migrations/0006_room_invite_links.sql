-- Invite links: a secret code that lets whoever holds it join the room, until
-- it expires, is used up or is revoked. Only the code's SHA-256 is stored:
-- the code is shown once, when the link is made. Each room has at most
-- MAX_LINKS_PER_ROOM links that still work; the rest are dropped when a link
-- is made, and a revoked link is deleted.
CREATE TABLE room_invite_links (
    id         BIGSERIAL   PRIMARY KEY,
    room_id    BIGINT      NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    code_hash  BYTEA       NOT NULL UNIQUE,
    created_by TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- NULL: never expires.
    expires_at TIMESTAMPTZ,
    -- NULL: any number of uses.
    max_uses   INTEGER     CHECK (max_uses > 0),
    uses       INTEGER     NOT NULL DEFAULT 0
);
CREATE INDEX room_invite_links_room_idx ON room_invite_links (room_id);
