//! The real `usersvc serve` as a child process on a test's database, for tests that measure
//! the server process itself (its memory, its threads), which an in-process server would share
//! with the tests.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::harness::{LINK_KEY, SECRET, TestApp, WAIT};

/// A `usersvc serve` process; killed when dropped.
pub struct Served {
    child: Child,
    pub base: String,
    pub pid: u32,
    /// What it has written to stderr (its log) so far.
    log: Arc<Mutex<String>>,
    _data: tempfile::TempDir,
}

impl Served {
    /// Starts `usersvc serve` on `t`'s database with the extra environment `env`, and waits
    /// until it says where it listens.
    pub async fn start(t: &TestApp, env: &[(&str, &str)]) -> Served {
        let data = tempfile::tempdir().expect("data folder");
        let mut child = Command::new(env!("CARGO_BIN_EXE_usersvc"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", &t.db_url)
            .env("USERSVC_JWT_SECRET", SECRET)
            .env("USERSVC_LINK_KEY", std::str::from_utf8(LINK_KEY).unwrap())
            .env("USERSVC_DATA_DIR", data.path())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("run usersvc serve");
        let pid = child.id().expect("pid");
        let log = Arc::new(Mutex::new(String::new()));
        let mut errors = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = errors.next_line().await {
                eprintln!("{line}");
                let mut log = kept.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let base = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if let Some(base) = line.strip_prefix("usersvc is listening on ") {
                    return base.trim().to_owned();
                }
            }
            panic!("usersvc serve ended without listening");
        })
        .await
        .expect("usersvc serve listens");
        // Keep reading so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Served {
            child,
            base,
            pid,
            log,
            _data: data,
        }
    }

    /// The lines of its log so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// A field of `/proc/PID/status` in KiB (`VmHWM`: the peak resident set; `VmRSS`: now).
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("the server process is alive");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }

    /// The names of the server process's threads.
    pub fn thread_names(&self) -> Vec<String> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid)).expect("tasks");
        tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
            .map(|n| n.trim().to_owned())
            .collect()
    }

    /// POSTs a GraphQL request; returns status and body text.
    pub async fn post(
        &self,
        client: &reqwest::Client,
        token: &str,
        body: &serde_json::Value,
    ) -> (u16, String) {
        let resp = client
            .post(format!("{}/graphql", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body"))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
