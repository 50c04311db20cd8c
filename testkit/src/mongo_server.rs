//! A private MongoDB-wire server a test can stop and start, on its own port and
//! data directory: `mongod` or `nx-27017`, as `TEST_MONGO_SERVER` names it
//! (scripts/test sets it).

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

pub struct MongoServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl MongoServer {
    /// A server on a free port, not started yet. The port is fixed for its
    /// life because a restart must come back on it.
    pub fn new() -> Self {
        let port = crate::free_port();
        let dir =
            std::env::temp_dir().join(format!("chat-test-mongo-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("data dir");
        Self {
            port,
            dir,
            child: None,
        }
    }

    pub fn uri(&self) -> String {
        format!(
            "mongodb://127.0.0.1:{}/?serverSelectionTimeoutMS=1000",
            self.port
        )
    }

    /// Starts the server on its port and data directory and waits until it
    /// accepts connections.
    pub async fn start(&mut self) {
        let bin = std::env::var("TEST_MONGO_SERVER")
            .expect("TEST_MONGO_SERVER names mongod or nx-27017 (scripts/test sets it)");
        let port = self.port.to_string();
        let dir = self.dir.to_string_lossy().into_owned();
        let mut cmd = Command::new(&bin);
        if bin.ends_with("mongod") {
            cmd.args(["--bind_ip", "127.0.0.1", "--port", &port, "--dbpath", &dir]);
        } else {
            let pid = format!("{dir}/server.pid");
            cmd.args([
                "--host",
                "127.0.0.1",
                "-p",
                &port,
                "--data-dir",
                &dir,
                "--pid-file",
                &pid,
                "--log-file",
                "/dev/null",
            ]);
        }
        let log = std::fs::File::create(self.dir.join("server.log")).expect("log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        self.child = Some(child);
        let port = self.port;
        crate::eventually(
            "the MongoDB server to accept connections",
            Duration::from_secs(30),
            || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
                    .map(|_| ())
            },
        )
        .await;
    }

    /// Kills the server (as a crash would) and waits for it to go.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.dir.join("server.pid"));
    }
}

impl Default for MongoServer {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
