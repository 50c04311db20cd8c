//! One service process: started with an environment, stopped with a signal.

use std::{
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    time::Duration,
};

/// The directory holding the workspace binaries (`target/debug`), found from
/// this test executable's path (`target/debug/deps/e2e-…`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .to_path_buf()
}

pub fn bin_path(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// The caller's `RUST_LOG`, with each service's startup line kept at info,
/// for whoever reads a failed test's logs.
fn child_log_filter() -> String {
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let startup = ["user_service", "history_service", "chat_service", "gateway"]
        .map(|krate| format!("{krate}::startup=info"))
        .join(",");
    format!("{base},{startup}")
}

pub struct Service {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
    /// The service's READY_FILE: its bound addresses, once it is up.
    ready: PathBuf,
    binary: String,
    env: Vec<(String, String)>,
}

impl Service {
    pub fn start(
        name: &str,
        binary: &str,
        env: &[(String, String)],
        log_dir: &std::path::Path,
    ) -> Self {
        let log = log_dir.join(format!("{name}.log"));
        let ready = log_dir.join(format!("{name}.ready"));
        let _ = std::fs::remove_file(&ready);
        let mut env = env.to_vec();
        env.push(("READY_FILE".into(), ready.display().to_string()));
        let file = std::fs::File::create(&log).expect("log file");
        let child = spawn(name, binary, &env, file);
        Self {
            name: name.to_owned(),
            child: Some(child),
            log,
            ready,
            binary: binary.to_owned(),
            env,
        }
    }

    /// Kills the process (SIGKILL) and starts it again with its environment,
    /// `overrides` replacing or adding settings (to come back on the same
    /// ports). Its log is appended to, behind a marker line.
    pub fn relaunch(&mut self, overrides: &[(String, String)]) {
        self.kill_now();
        for (k, v) in overrides {
            self.env.retain(|(key, _)| key != k);
            self.env.push((k.clone(), v.clone()));
        }
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .expect("log file");
        use std::io::Write;
        let _ = writeln!(file, "--- relaunched ---");
        // A killed process leaves its ready file: the new one writes its own.
        let _ = std::fs::remove_file(&self.ready);
        self.child = Some(spawn(&self.name, &self.binary, &self.env, file));
    }

    /// SIGKILL and reap, if running.
    pub fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// (resident, peak resident) memory in KiB, from /proc.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the process is alive");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Resets the peak-resident mark to the current size (Linux clear_refs 5),
    /// so a later peak measures only what came after.
    pub fn reset_peak_memory(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5")
            .expect("clear_refs (root or the process's owner)");
    }

    /// Sends a signal by name (`TERM`, `KILL`).
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status();
    }

    /// Waits for the process to exit, up to `deadline`.
    pub async fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Some(status);
            }
            if self.child.is_none() || tokio::time::Instant::now() >= end {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The port of listener `listener` (e.g. `grpc`, `ops`), from the ready
    /// file the service writes once it has bound every listener (see
    /// `service_kit::ready`). Panics with the log's tail if the process exits
    /// first or a minute passes, so a failed start says why.
    pub async fn bound_port(&mut self, listener: &str) -> u16 {
        let deadline = Duration::from_secs(60);
        let end = tokio::time::Instant::now() + deadline;
        loop {
            match service_kit::ready::Ready::read(&self.ready) {
                Ok(Some(ready)) => {
                    return ready.listeners.get(listener).map_or_else(
                        || panic!("{}: no listener {listener} in {ready:?}", self.name),
                        std::net::SocketAddr::port,
                    );
                }
                Ok(None) => {}
                Err(e) => panic!("{}: unreadable ready file: {e}", self.name),
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            if tokio::time::Instant::now() >= end {
                panic!(
                    "{} was not ready within {deadline:?}:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn spawn(name: &str, binary: &str, env: &[(String, String)], log: std::fs::File) -> Child {
    let mut cmd = Command::new(bin_path(binary));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", child_log_filter())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log);
    cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"))
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
