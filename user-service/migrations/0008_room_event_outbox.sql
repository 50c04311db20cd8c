-- Membership events on their way to their room's timeline. A row is
-- written in the transaction of the change it records, so a committed
-- change always has its event; user-service's relay (event_relay.rs) adds
-- it to the room's ingress stream, where chat-service gives it a seq, and
-- deletes the row once written there. A row relayed twice (the relay died
-- between the two steps) is one event: its client_id is `evt-<id>`.
CREATE TABLE room_event_outbox (
    id BIGSERIAL PRIMARY KEY,
    room TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('join', 'leave', 'kick', 'ban', 'unban', 'role')),
    subject TEXT NOT NULL,
    role TEXT CHECK (role IN ('owner', 'admin', 'member')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
