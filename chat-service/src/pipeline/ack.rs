//! Stage 5, acknowledge: XACK and XDEL of every entry of the batch, and the
//! dead letters, added to the consumer's finishing pipeline (sent with its
//! next read: `common::consumer`). Only now is every step of these entries
//! done; a crash before that read replays the batch, and every earlier
//! stage is idempotent.

use common::consumer::Group;

use super::payloads::Outcome;

pub(crate) fn add(group: &Group, pipe: &mut redis::Pipeline, outcome: &Outcome<'_>) {
    let Outcome {
        accepted,
        resent,
        typing,
        rejected,
        dead,
        ..
    } = *outcome;
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
