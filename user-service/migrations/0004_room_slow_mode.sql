-- Slow mode: the least time, in seconds, between two messages of one member
-- in the room (0: off; admins and the owner are exempt). At most 6 hours.
ALTER TABLE rooms ADD COLUMN slow_mode_secs INTEGER NOT NULL DEFAULT 0
    CHECK (slow_mode_secs BETWEEN 0 AND 21600);
