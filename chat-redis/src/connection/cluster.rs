//! Pipelines on a Redis Cluster. redis-rs's cluster client sends a pipeline
//! to one node and refuses one whose keys span slots, but the system's
//! pipelines batch work for many conversations, users and gateways at once.
//! Here a pipeline is split into one sub-pipeline per slot (keeping each
//! slot's commands in their order, which is all that per-key order needs),
//! the sub-pipelines run concurrently, and their replies are put back in the
//! pipeline's order. Keyless commands (SCRIPT LOAD) go on their own, routed
//! by redis-rs (SCRIPT LOAD to every node).
//!
//! What this gives up: a pipeline is not ordered across slots. No pipeline
//! of the system depends on that; each slot's commands are what must stay in
//! order (a ZADD and its trim, an INCR and its PUBLISH in one script).

use std::collections::HashMap;

use futures::future::try_join_all;
use redis::{Pipeline, RedisResult, Value, aio::ConnectionLike, cluster_async::ClusterConnection};

use super::slots::{routing_key, slot};

enum Part {
    Slot(Pipeline),
    Keyless(redis::Cmd),
}

/// Sends `pipe` over `conn`, split by slot; the replies of commands
/// `offset..offset + count`, as `req_packed_commands` promises.
pub async fn pipeline(
    conn: &ClusterConnection,
    pipe: &Pipeline,
    offset: usize,
    count: usize,
) -> RedisResult<Vec<Value>> {
    if pipe.is_transaction() {
        // MULTI/EXEC must stay whole; the cluster refuses it if it spans slots.
        return conn.clone().req_packed_commands(pipe, offset, count).await;
    }
    let mut parts: Vec<(Part, Vec<usize>)> = Vec::new();
    let mut by_slot: HashMap<u16, usize> = HashMap::new();
    for (i, cmd) in pipe.cmd_iter().enumerate() {
        match routing_key(cmd).map(slot) {
            Some(s) => {
                let at = *by_slot.entry(s).or_insert_with(|| {
                    parts.push((Part::Slot(redis::pipe()), Vec::new()));
                    parts.len() - 1
                });
                let (Part::Slot(sub), indexes) = &mut parts[at] else {
                    unreachable!("slot entries index slot parts")
                };
                sub.add_command(cmd.clone());
                indexes.push(i);
            }
            None => parts.push((Part::Keyless(cmd.clone()), vec![i])),
        }
    }
    if let [(Part::Slot(_), _)] = parts.as_slice() {
        return conn.clone().req_packed_commands(pipe, offset, count).await;
    }
    let replies = try_join_all(parts.iter().map(|(part, _)| {
        let mut conn = conn.clone();
        async move {
            match part {
                Part::Slot(sub) => conn.req_packed_commands(sub, 0, sub.len()).await,
                Part::Keyless(cmd) => conn.req_packed_command(cmd).await.map(|v| vec![v]),
            }
        }
    }))
    .await?;
    let mut values = vec![Value::Nil; pipe.len()];
    for ((_, indexes), replies) in parts.iter().zip(replies) {
        for (&i, value) in indexes.iter().zip(replies) {
            values[i] = value;
        }
    }
    Ok(values.into_iter().skip(offset).take(count).collect())
}
