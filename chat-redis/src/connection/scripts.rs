//! Lua scripts sent as EVALSHA in pipelines, loaded on demand.

use redis::{Pipeline, aio::ConnectionLike};

use super::slots;

/// A Lua script run with EVALSHA inside pipelines sent by [`query_scripted`],
/// which loads it when Redis does not have it (a restart, SCRIPT FLUSH).
#[derive(Debug, Clone)]
pub struct LuaScript {
    source: &'static str,
    sha: String,
}

impl LuaScript {
    pub fn new(source: &'static str) -> Self {
        Self {
            source,
            sha: redis::Script::new(source).get_hash().to_owned(),
        }
    }

    /// Adds SCRIPT LOAD to `pipe`, its reply ignored.
    fn load(&self, pipe: &mut redis::Pipeline) {
        pipe.cmd("SCRIPT").arg("LOAD").arg(self.source).ignore();
    }

    /// Adds one EVALSHA call to `pipe`. Its keys must share a slot (a
    /// Redis Cluster refuses a script that spans slots): checked here in
    /// debug builds, so every test that runs a script checks its key set.
    pub fn call<K: redis::ToRedisArgs, A: redis::ToRedisArgs>(
        &self,
        pipe: &mut redis::Pipeline,
        keys: &[K],
        args: &[A],
    ) {
        debug_assert!(
            slots::same_slot(
                &keys
                    .iter()
                    .flat_map(|k| k.to_redis_args())
                    .collect::<Vec<_>>()
            ),
            "a script's keys span Redis Cluster slots"
        );
        let cmd = pipe.cmd("EVALSHA").arg(&self.sha).arg(keys.len());
        for k in keys {
            cmd.arg(k);
        }
        for a in args {
            cmd.arg(a);
        }
    }
}

/// Sends `pipe`, whose script calls are EVALSHA of `scripts`. A Redis that
/// lost its script cache answers NOSCRIPT: the scripts are loaded and the
/// pipeline is sent once more. Every scripted pipeline of the system is
/// idempotent (a replayed batch must be), so what ran before the error may
/// run twice. Loading the scripts in every pipeline instead cost 1.4
/// SCRIPT LOAD calls per DM, each hashing the whole script (bench/README.md).
pub async fn query_scripted<T: redis::FromRedisValue>(
    conn: &mut (impl ConnectionLike + Send),
    pipe: &Pipeline,
    scripts: &[&LuaScript],
) -> redis::RedisResult<T> {
    match pipe.query_async(conn).await {
        Err(e) if e.kind() == redis::ErrorKind::NoScriptError || e.code() == Some("NOSCRIPT") => {
            metrics::counter!("redis_scripts_reloaded_total").increment(1);
            let mut load = redis::pipe();
            for script in scripts {
                script.load(&mut load);
            }
            load.query_async::<()>(conn).await?;
            pipe.query_async(conn).await
        }
        other => other,
    }
}
