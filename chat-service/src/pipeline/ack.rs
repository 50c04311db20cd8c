//! Stage 5, acknowledge: XACK and XDEL of every entry of the batch, and the
//! dead letters, in one pipeline. Only now is every step of these entries
//! done; a crash before this point replays the batch, and every earlier
//! stage is idempotent.

use common::{consumer::Group, redis_conn::Redis};

use super::payloads::Outcome;
use crate::error::BatchError;

pub(crate) async fn run(
    group: &Group,
    conn: &mut Redis,
    outcome: &Outcome<'_>,
) -> Result<(), BatchError> {
    let Outcome {
        accepted,
        resent,
        typing,
        rejected,
        dead,
        ..
    } = *outcome;
    let mut pipe = redis::pipe();
    for (id, field) in dead {
        group.dead_letter(&mut pipe, id, field, "unreadable entry");
    }
    let ids: Vec<&str> = accepted
        .iter()
        .chain(resent.iter().map(|(a, _)| a))
        .chain(typing)
        .map(|a| a.stream_id.as_str())
        .chain(rejected.iter().map(|r| r.stream_id.as_str()))
        .chain(dead.iter().map(|(id, _)| id.as_str()))
        .collect();
    group.ack(&mut pipe, &ids);
    pipe.query_async::<()>(conn).await?;
    Ok(())
}
