-- Rooms people can run: visibility, three roles with exactly one owner, bans
-- (optionally until a time), mutes, pending invites, and a moderation log.

ALTER TABLE rooms ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public'
    CHECK (visibility IN ('public', 'private'));
-- A deleted room keeps its row, without members, so its name is retired: a
-- new room of that name would otherwise inherit its history.
ALTER TABLE rooms ADD COLUMN deleted_at TIMESTAMPTZ;
-- The directory: public rooms by name.
CREATE INDEX rooms_public_name_idx ON rooms (name)
    WHERE visibility = 'public' AND deleted_at IS NULL;

ALTER TABLE memberships DROP CONSTRAINT memberships_role_check;
ALTER TABLE memberships ADD CONSTRAINT memberships_role_check
    CHECK (role IN ('owner', 'admin', 'member'));
-- Until now the creator's ownership was a membership role that leaving
-- dropped. A room left without an owner gets one back: its creator if still
-- a member, else its longest-standing member.
UPDATE memberships m SET role = 'owner'
FROM (
    SELECT DISTINCT ON (m2.room_id) m2.room_id, m2.user_id
    FROM memberships m2 JOIN rooms r ON r.id = m2.room_id
    WHERE NOT EXISTS (SELECT 1 FROM memberships o WHERE o.room_id = m2.room_id AND o.role = 'owner')
    ORDER BY m2.room_id, (m2.user_id = r.created_by) DESC, m2.joined_at, m2.user_id
) heir
WHERE m.room_id = heir.room_id AND m.user_id = heir.user_id;
-- A room has at most one owner (exactly one while it has members: the owner
-- cannot leave before handing the room on).
UPDATE memberships m SET role = 'member'
WHERE m.role = 'owner' AND EXISTS (
    SELECT 1 FROM memberships o
    WHERE o.room_id = m.room_id AND o.role = 'owner' AND o.joined_at < m.joined_at
);
CREATE UNIQUE INDEX memberships_one_owner_idx ON memberships (room_id) WHERE role = 'owner';

-- A muted member reads but cannot send, edit or delete until then.
ALTER TABLE memberships ADD COLUMN muted_until TIMESTAMPTZ;

CREATE TABLE room_bans (
    room_id    BIGINT      NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    banned_by  TEXT        NOT NULL,
    reason     TEXT        NOT NULL DEFAULT '',
    -- NULL: for good.
    until      TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE room_invites (
    room_id    BIGINT      NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    invited_by TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id)
);
-- "This user's pending invites".
CREATE INDEX room_invites_user_id_idx ON room_invites (user_id);

-- Who did what to whom, when and why; the newest entries of each room are
-- kept (the store trims the rest).
CREATE TABLE room_audit (
    id         BIGSERIAL   PRIMARY KEY,
    room_id    BIGINT      NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    actor      TEXT        NOT NULL,
    action     TEXT        NOT NULL,
    target     TEXT        NOT NULL DEFAULT '',
    reason     TEXT        NOT NULL DEFAULT '',
    at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX room_audit_room_idx ON room_audit (room_id, id);
