//! The test servers the scripts start (scripts/lib/servers.sh): a MongoDB-wire
//! server whose storage went away under it (its checkout was deleted) answers
//! a ping but fails every write; the next script run must not reuse it.

use std::process::{Command, Output};

use crate::deploy::repo;

fn servers(port: u16, call: &str) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("source scripts/lib/servers.sh && {call}"))
        .current_dir(repo())
        .env("SERVERS_MONGO_PORT", port.to_string())
        .env_remove("MONGODB_URI")
        .output()
        .expect("bash")
}

#[test]
fn a_server_that_answers_but_cannot_write_is_replaced() {
    let port = testkit::free_port();
    let started = servers(port, "ensure_mongo");
    let log = String::from_utf8_lossy(&started.stderr).into_owned();
    assert!(started.status.success(), "{log}");
    let state =
        std::env::var("CHAT_SERVERS_DIR").unwrap_or_else(|_| "/var/tmp/chat-servers".into());
    // nx-27017's data directory, or mongod's where mongod is installed.
    let data = [format!("mongo-data-{port}"), format!("mongod-data-{port}")]
        .iter()
        .map(|d| std::path::Path::new(&state).join(d))
        .find(|d| d.exists())
        .expect("the server's data directory");
    let moved = data.with_extension("gone");
    {
        // Its storage goes away while it runs, as when its checkout is deleted.
        std::fs::rename(&data, &moved).unwrap();
        let probe = servers(port, &format!("_srv_mongo_writes 127.0.0.1 {port}"));
        assert!(
            !probe.status.success(),
            "a server without storage still wrote"
        );

        let again = servers(port, "ensure_mongo");
        let log = String::from_utf8_lossy(&again.stderr).into_owned();
        assert!(again.status.success(), "{log}");
        assert!(log.contains("cannot write; replacing"), "{log}");
        let probe = servers(port, &format!("_srv_mongo_writes 127.0.0.1 {port}"));
        assert!(probe.status.success(), "the replacement writes");
    }
    let stopped = servers(port, "stop_mongo");
    assert!(stopped.status.success());
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&moved);
}
