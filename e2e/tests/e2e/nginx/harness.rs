//! The harness: Debian's nginx running a copy of deploy/nginx.conf that
//! differs from it only where a test must (addresses and file paths), as a
//! child process stopped on drop.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use e2e::Stack;

use crate::deploy::read;

/// Ends every line the test writes into its copy of deploy/nginx.conf.
pub(super) const TAG: &str = "# e2e: test substitution";

/// The nginx to run: TEST_NGINX, else `nginx` on PATH or in /usr/sbin (not
/// on a non-root PATH) or /usr/local/sbin.
pub(super) fn nginx_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TEST_NGINX") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "TEST_NGINX={} does not exist: install nginx (scripts/test does it: apt-get install nginx-light)",
            path.display()
        );
        return path;
    }
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&dirs)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nginx is not installed, and this test runs the real nginx with deploy/nginx.conf. \
                 Run the tests through scripts/test (it installs Debian's nginx-light and sets \
                 TEST_NGINX), or install it (`apt-get install nginx-light`), or set TEST_NGINX \
                 to an nginx binary"
            )
        })
}

/// One change to deploy/nginx.conf: a whole line (compared trimmed), which
/// must occur exactly once, replaced by `lines`, or (`keep`) kept and
/// followed by them. They are indented like that line.
pub(super) struct Edit {
    line: &'static str,
    keep: bool,
    lines: Vec<String>,
}

impl Edit {
    pub(super) fn replace(line: &'static str, with: String) -> Self {
        Self {
            line,
            keep: false,
            lines: vec![with],
        }
    }

    pub(super) fn after(line: &'static str, lines: Vec<String>) -> Self {
        Self {
            line,
            keep: true,
            lines,
        }
    }
}

/// The test's copy of `production` (deploy/nginx.conf). Only these change:
/// - `listen 8080;` becomes `listen 127.0.0.1:<port>;` (a free port, on
///   loopback only);
/// - `set $gateway gateway:8080;` becomes `set $gateway chat_gateways;`, and
///   an `upstream chat_gateways` block listing the stack's gateways follows
///   `http {`. In compose the name `gateway` is resolved per request through
///   Docker's DNS (the `resolver` line), which returns every replica; here
///   the upstream group plays that part, round robin over both gateways. The
///   `resolver` line stays: nginx looks a name up among its upstream groups
///   before asking a resolver, so it is never asked;
/// - also after `http {`: every temp path (request bodies, proxied
///   responses, and the fastcgi, uwsgi and scgi ones nginx creates at
///   start) in `dir` instead of /var/lib/nginx;
/// - the two `error_log` lines and the `access_log` line write into `dir`
///   instead of /var/log/nginx (as scripts/lib/check-deploy does).
///
/// The command line adds `daemon off;` and a pid file in `dir` (see
/// [`Nginx::start`]). There is no `user` directive to drop: the file has
/// none. Everything else — worker_processes, worker_rlimit_nofile,
/// worker_connections, the map, the log format, the locations and their
/// headers and timeouts — is the production file's, line for line. Panics if
/// a line to change is missing or repeated, if the copy differs from the
/// file in any line not written here, or if a line left as it is still names
/// a path outside `dir`.
pub(super) fn test_config(production: &str, dir: &Path, port: u16, gateways: &[u16]) -> String {
    let dir = dir.display();
    let mut http = vec!["    upstream chat_gateways {".to_owned()];
    http.extend(
        gateways
            .iter()
            .map(|p| format!("        server 127.0.0.1:{p};")),
    );
    http.push("    }".to_owned());
    for (directive, name) in [
        ("client_body_temp_path", "client_body"),
        ("proxy_temp_path", "proxy"),
        ("fastcgi_temp_path", "fastcgi"),
        ("uwsgi_temp_path", "uwsgi"),
        ("scgi_temp_path", "scgi"),
    ] {
        http.push(format!("    {directive} {dir}/{name};"));
    }
    let edits = [
        Edit::replace("listen 8080;", format!("listen 127.0.0.1:{port};")),
        Edit::replace(
            "set $gateway gateway:8080;",
            "set $gateway chat_gateways;".to_owned(),
        ),
        Edit::after("http {", http),
        Edit::replace(
            "error_log /var/log/nginx/error.log warn;",
            format!("error_log {dir}/error.log warn;"),
        ),
        Edit::replace(
            "error_log /var/log/nginx/error.log crit;",
            format!("error_log {dir}/error.log crit;"),
        ),
        Edit::replace(
            "access_log /var/log/nginx/access.log chat_access;",
            format!("access_log {dir}/access.log chat_access;"),
        ),
    ];

    let mut hits = vec![0_usize; edits.len()];
    let mut out: Vec<String> = Vec::new();
    for line in production.lines() {
        let Some(i) = edits.iter().position(|e| e.line == line.trim()) else {
            out.push(line.to_owned());
            continue;
        };
        hits[i] += 1;
        let indent = &line[..line.len() - line.trim_start().len()];
        if edits[i].keep {
            out.push(line.to_owned());
        }
        out.extend(
            edits[i]
                .lines
                .iter()
                .map(|new| format!("{indent}{new}  {TAG}")),
        );
    }
    for (edit, n) in edits.iter().zip(&hits) {
        assert_eq!(
            *n, 1,
            "deploy/nginx.conf has {n} lines `{}`, this test changes exactly one: \
             update the substitutions in e2e/tests/e2e/nginx.rs",
            edit.line
        );
    }
    let config = out.join("\n") + "\n";

    // Checked again from the outside: with the replaced lines taken out of
    // the file and the written ones out of the copy, the two are identical.
    let replaced: Vec<&str> = edits.iter().filter(|e| !e.keep).map(|e| e.line).collect();
    let production_rest: Vec<&str> = production
        .lines()
        .filter(|l| !replaced.contains(&l.trim()))
        .collect();
    let copy_rest: Vec<&str> = config.lines().filter(|l| !l.ends_with(TAG)).collect();
    assert_eq!(
        production_rest, copy_rest,
        "the test copy differs from deploy/nginx.conf beyond its substitutions"
    );
    for line in copy_rest {
        let code = line.split('#').next().unwrap_or_default();
        assert!(
            !code.contains("/var/") && !code.contains("/run/"),
            "deploy/nginx.conf names a machine path the test would write to: `{}`; \
             add a substitution for it in e2e/tests/e2e/nginx.rs",
            line.trim()
        );
    }
    config
}

/// nginx with the test copy of deploy/nginx.conf, as a child process in the
/// foreground; stopped on drop.
pub(super) struct Nginx {
    pub(super) child: Option<Child>,
    pub(super) port: u16,
    /// Its configuration, logs, pid file and temp files.
    pub(super) dir: PathBuf,
}

impl Nginx {
    /// Starts nginx in front of the stack's gateways and waits until a
    /// request reaches a gateway through it.
    pub(super) async fn start(stack: &Stack) -> Self {
        let binary = nginx_binary();
        let production = read("deploy/nginx.conf");
        // A port picked in advance can be taken before nginx binds it; then
        // nginx exits at once, and another one is tried.
        for attempt in 1..=3 {
            let dir = stack.log_dir.join(format!("nginx-{attempt}"));
            std::fs::create_dir_all(&dir).expect("nginx directory");
            let port = testkit::free_port();
            let conf = dir.join("nginx.conf");
            std::fs::write(
                &conf,
                test_config(&production, &dir, port, &stack.gateway_ports),
            )
            .expect("write the test nginx.conf");
            let out = File::create(dir.join("nginx.out")).expect("nginx output file");
            // -p: relative paths and the prefix in the test's directory;
            // -e: the error log of startup, before the file's own is open.
            let child = Command::new(&binary)
                .arg("-p")
                .arg(format!("{}/", dir.display()))
                .arg("-e")
                .arg(dir.join("error.log"))
                .arg("-c")
                .arg(&conf)
                .arg("-g")
                .arg(format!(
                    "daemon off; pid {};",
                    dir.join("nginx.pid").display()
                ))
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("nginx output file"))
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            let mut nginx = Self {
                child: Some(child),
                port,
                dir,
            };
            match nginx.wait_serving().await {
                Ok(()) => return nginx,
                Err(log) if log.contains("Address already in use") => {}
                Err(log) => {
                    panic!("nginx did not start with the test copy of deploy/nginx.conf:\n{log}")
                }
            }
        }
        panic!("nginx found no free port in 3 attempts");
    }

    /// Polls `/healthz` through nginx (a gateway answers it) until it answers
    /// 200; an error with nginx's logs if nginx exits first or 30 s pass.
    pub(super) async fn wait_serving(&mut self) -> Result<(), String> {
        let http = reqwest::Client::new();
        let url = self.url("/healthz");
        let deadline = Duration::from_secs(30);
        let outcome = testkit::wait::poll_until(deadline, || {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            let request = http.get(&url).send();
            async move {
                if let Some(status) = exited {
                    return Some(Err(format!("nginx exited ({status})")));
                }
                let ok = request.await.ok()?.status().is_success();
                ok.then_some(Ok(()))
            }
        })
        .await;
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(format!("{e}\n{}", self.logs())),
            None => Err(format!(
                "{url} did not answer 200 within {deadline:?}\n{}",
                self.logs()
            )),
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// nginx's output and error log, for failure messages.
    pub(super) fn logs(&self) -> String {
        let file = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!(
            "nginx output:\n{}\nnginx error.log:\n{}",
            file("nginx.out"),
            file("error.log")
        )
    }

    /// nginx logged nothing at `crit` or worse (the level the file keeps for
    /// requests), apart from a refused setrlimit: raising the file limit to
    /// worker_rlimit_nofile needs CAP_SYS_RESOURCE, which a test machine may
    /// not grant (compose raises it with `ulimits` instead); the workers
    /// then keep the limit they inherit, checked by [`assert_open_files`].
    pub(super) fn assert_no_errors(&self) {
        let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        let serious: Vec<&str> = log
            .lines()
            .filter(|l| {
                ["[emerg]", "[alert]", "[crit]"]
                    .iter()
                    .any(|lvl| l.contains(*lvl))
            })
            .filter(|l| !l.contains("setrlimit(RLIMIT_NOFILE"))
            .collect();
        assert!(
            serious.is_empty(),
            "nginx logged errors:\n{}",
            serious.join("\n")
        );
    }
}

impl Drop for Nginx {
    /// SIGTERM to the master, which stops its workers and exits. If it has
    /// not within 10 s, SIGKILL to its workers (its children, read while it
    /// is not yet reaped) and to it.
    fn drop(&mut self) {
        let Some(mut master) = self.child.take() else {
            return;
        };
        if matches!(master.try_wait(), Ok(None)) {
            let pid = master.id();
            let _ = Command::new("kill")
                .args(["-TERM", pid.to_string().as_str()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(master.try_wait(), Ok(None)) {
                if Instant::now() >= deadline {
                    let workers =
                        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                            .unwrap_or_default();
                    for worker in workers.split_whitespace() {
                        let _ = Command::new("kill").args(["-KILL", worker]).status();
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = master.kill();
        let _ = master.wait();
    }
}
