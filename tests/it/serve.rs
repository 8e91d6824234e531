//! `usersvc serve` as a real child process: its start banner and the command it prints, the
//! development token GraphiQL starts with (and only with the development key), JSON log lines.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::harness::*;

/// How long a start or stop may take before the test fails: an embedded cluster's first
/// start runs initdb, slow on a busy machine. It bounds only a failing test.
const START_STOP: std::time::Duration = std::time::Duration::from_secs(120);

/// A running `usersvc serve` and every line it has written, stdout and stderr together.
pub struct Serve {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Serve {
    /// Starts `usersvc serve` in `dir` with `env` (and nothing from this process's `RUST_LOG`,
    /// `DATABASE_URL`, `USERSVC_*` or `OTEL_*` variables), listening on a free port.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Serve {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_usersvc"));
        cmd.arg("serve")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG")
            .env_remove("DATABASE_URL");
        for (name, _) in std::env::vars() {
            if (name.starts_with("USERSVC_") && name != "USERSVC_NO_INSTALL")
                || name.starts_with("OTEL_")
            {
                cmd.env_remove(name);
            }
        }
        cmd.env("USERSVC_LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied());
        let mut child = cmd.spawn().expect("start usersvc serve");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let stderr: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        let readers = [stdout, stderr]
            .into_iter()
            .map(|stream| {
                let lines = lines.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { break };
                        lines.lock().unwrap().push(line);
                    }
                })
            })
            .collect();
        Serve {
            child,
            lines,
            readers,
        }
    }

    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits for the first line `pick` takes something from.
    pub async fn wait_for<T>(&self, what: &str, pick: impl Fn(&str) -> Option<T>) -> T {
        let this = self;
        eventually(START_STOP, || {
            let found = this.lines().iter().find_map(|l| pick(l));
            async move { found.ok_or_else(|| format!("no {what} yet in {:#?}", this.lines())) }
        })
        .await
    }

    /// Stops it as a service manager would (SIGTERM) and returns every line it wrote.
    pub async fn stop(mut self) -> Vec<String> {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
        let child = &mut self.child;
        let status = eventually(START_STOP, || {
            let status = child.try_wait().expect("wait for usersvc");
            async move { status.ok_or("still running") }
        })
        .await;
        for reader in std::mem::take(&mut self.readers) {
            reader.join().unwrap();
        }
        assert!(status.success(), "usersvc serve exited with {status}");
        self.lines()
    }
}

impl Drop for Serve {
    /// A failing test does not leave the server running.
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// `usersvc serve` on the test's database with a configured key, logging JSON.
pub fn serve_on(t: &TestApp, dir: &Path, extra: &[(&str, &str)]) -> Serve {
    let link_key = String::from_utf8(LINK_KEY.to_vec()).unwrap();
    let data_dir = dir.display().to_string();
    let mut env = vec![
        ("DATABASE_URL", t.db_url.as_str()),
        ("USERSVC_JWT_SECRET", SECRET),
        ("USERSVC_LINK_KEY", link_key.as_str()),
        ("USERSVC_LOG_FORMAT", "json"),
        ("USERSVC_DATA_DIR", data_dir.as_str()),
    ];
    env.extend_from_slice(extra);
    Serve::start(dir, &env)
}

/// The base URL a JSON start banner names.
pub fn listening(line: &str) -> Option<String> {
    let v: Value = serde_json::from_str(line).ok()?;
    (v["message"] == "usersvc is listening").then(|| v["address"].as_str().map(str::to_owned))?
}

/// `GET /graphql` as a browser asks for it: the GraphiQL page, answered with 200.
async fn graphiql_page(base: &str) -> reqwest::Response {
    let resp = reqwest::Client::new()
        .get(format!("{base}/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp
}

#[tokio::test]
async fn with_json_logs_every_line_is_json_and_request_lines_carry_the_request_id() {
    let t = TestApp::new().await;
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_on(&t, dir.path(), &[]);
    let base = serve.wait_for("start banner", listening).await;
    let client = reqwest::Client::new();
    let post = |token: String| {
        client
            .post(format!("{base}/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": "{ users(first: 1) { totalCount } }" }))
            .send()
    };
    let answered = post(t.token("a", ALL)).await.unwrap();
    assert_eq!(answered.status(), 200);
    let refused = post("not.a.token".into()).await.unwrap();
    assert_eq!(refused.status(), 401);
    let refused_id = refused.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // A real key is configured: the page carries no token.
    let page = graphiql_page(&base).await.text().await.unwrap();
    assert!(!page.contains("usersvc-dev-token"), "{page}");

    let lines = serve.stop().await;
    let mut messages = Vec::new();
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let ts = v["timestamp"].as_str().unwrap_or_else(|| panic!("{line}"));
        assert!(ts.ends_with('Z'), "{line}");
        chrono::DateTime::parse_from_rfc3339(ts).unwrap_or_else(|e| panic!("{e}: {line}"));
        let level = v["level"].as_str().unwrap_or_else(|| panic!("{line}"));
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "{line}"
        );
        assert!(v["target"].is_string(), "{line}");
        messages.push(
            v["message"]
                .as_str()
                .unwrap_or_else(|| panic!("{line}"))
                .to_owned(),
        );
        assert!(!line.contains("Some("), "Rust Debug text: {line}");
    }
    let found = |message: &str| -> Vec<Value> {
        lines
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["message"] == message)
            .collect()
    };
    let banner = &found("usersvc is listening")[0];
    assert_eq!(
        banner["graphiql"],
        json!(format!("{base}/graphql")),
        "{banner}"
    );
    assert!(banner.get("development_app").is_none(), "{banner}");

    // Each request's own line: its id, the status and latency as numbers.
    let requests = found("request");
    assert_eq!(requests.len(), 3, "{requests:#?}");
    for r in &requests {
        assert!(r["request_id"].is_string(), "{r}");
        assert!(r["status"].is_u64(), "{r}");
        assert!(r["latency_ms"].is_number(), "{r}");
    }
    assert!(
        requests
            .iter()
            .any(|r| r["request_id"] == json!(refused_id) && r["status"] == json!(401)),
        "{requests:#?}"
    );
    // A line written while the request was served carries the request's id and route.
    let refusals = found("token refused");
    assert_eq!(refusals.len(), 1, "{messages:?}");
    assert_eq!(
        refusals[0]["request_id"],
        json!(refused_id),
        "{}",
        refusals[0]
    );
    assert_eq!(refusals[0]["route"], json!("/graphql"), "{}", refusals[0]);
    assert!(
        messages.contains(&"shutting down".to_owned()),
        "{messages:?}"
    );
}

#[tokio::test]
async fn the_banner_command_works_as_printed_and_graphiql_starts_with_the_development_token() {
    // The embedded database under ./.data and the development key, as on a laptop; the
    // postgres OS user must reach the folder when this runs as root.
    let dir = crate::embedded::short_tmp(true);
    let serve = Serve::start(dir.path(), &[]);
    let base = serve
        .wait_for("start banner", |l| {
            l.strip_prefix("usersvc is listening on ")
                .map(str::to_owned)
        })
        .await;
    let token = serve
        .wait_for("development token", |l| {
            let v: Value = serde_json::from_str(l.trim()).ok()?;
            v["Authorization"]
                .as_str()?
                .strip_prefix("Bearer ")
                .map(str::to_owned)
        })
        .await;
    let more = serve
        .wait_for("command for more tokens", |l| {
            l.trim().strip_prefix("More tokens: ").map(str::to_owned)
        })
        .await;

    // The command runs as printed, from the folder the server was started in.
    let out = Command::new("sh")
        .arg("-c")
        .arg(&more)
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("USERSVC_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{more}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let minted = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    for token in [&token, &minted] {
        let resp = reqwest::Client::new()
            .post(format!("{base}/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": "{ users(first: 1) { totalCount } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["data"]["users"]["totalCount"], json!(0), "{v}");
    }

    // GraphiQL starts with the development token, from a page no cache keeps.
    let resp = graphiql_page(&base).await;
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let page = resp.text().await.unwrap();
    assert!(
        page.contains(&format!(
            r#"<meta name="usersvc-dev-token" content="{token}" />"#
        )),
        "{page}"
    );
    serve.stop().await;
}
