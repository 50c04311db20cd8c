-- Blocks: `blocker` takes no DMs or invites from `blocked`, and `blocked`
-- no longer sees the blocker's typing or presence. At most MAX_BLOCKS rows per
-- blocker (the store checks it in the inserting transaction).
CREATE TABLE user_blocks (
    blocker_id BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);
-- "Who blocked this user" (presence in member lists).
CREATE INDEX user_blocks_blocked_idx ON user_blocks (blocked_id);

-- A room's display name: free text, changed by admins and the owner. The
-- name stays the room's immutable id; an empty display name shows the name.
ALTER TABLE rooms ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
