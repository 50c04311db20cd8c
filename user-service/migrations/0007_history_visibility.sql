-- History visibility: `full` (members read the whole history) or
-- `since_join` (members read only what was sent after they joined).
ALTER TABLE rooms ADD COLUMN history_visibility TEXT NOT NULL DEFAULT 'full'
    CHECK (history_visibility IN ('full', 'since_join'));
-- The room's last seq when the member joined: under `since_join` they read
-- only later seqs. 0 for members who joined before this column existed
-- (their join point is unknown, so they keep the whole history).
ALTER TABLE memberships ADD COLUMN history_from BIGINT NOT NULL DEFAULT 0
    CHECK (history_from >= 0);
