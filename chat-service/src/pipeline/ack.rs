//! Stage 5, acknowledge: XACK and XDEL of every entry of the batch, the
//! dead letters, and each message's delivered bit (`Keys::delivered`),
//! added to the consumer's finishing pipeline (sent with its next read:
//! `chat_redis::consumer`). Only now is every step of these entries done; a
//! crash before that read replays the batch, and every earlier stage is
//! idempotent. The bits go with the acknowledgement, never before the
//! publishes they vouch for, so a retry that finds one set may skip its
//! message's live deliveries.

use chat_redis::{consumer::Group, keys::Keys};

use super::payloads::Outcome;

pub(crate) fn add(group: &Group, keys: &Keys, pipe: &mut redis::Pipeline, outcome: &Outcome<'_>) {
    let Outcome {
        accepted,
        messages,
        resent,
        typing,
        rejected,
        dead,
        ..
    } = *outcome;
    for m in messages {
        pipe.setbit(
            keys.delivered(m.conversation.as_str()),
            m.seq as usize,
            true,
        )
        .ignore();
    }
    for (id, field) in dead {
        group.dead_letter(pipe, id, field, "unreadable entry");
    }
    let ids: Vec<&str> = accepted
        .iter()
        .chain(resent.iter().map(|(a, _)| a))
        .chain(typing)
        .map(|a| a.stream_id.as_str())
        .chain(rejected.iter().map(|r| r.stream_id.as_str()))
        .chain(dead.iter().map(|(id, _)| id.as_str()))
        .collect();
    group.ack(pipe, &ids);
}
