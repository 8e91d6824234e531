//! The security checklist (`docs/security-tests.md`) row by row, where no other file proves a
//! row already: tenant isolation on every operation of the schema ([`tenants`]), the scope of
//! every operation against the contract's own table ([`scopes`]), the GraphQL layer's limits
//! and introspection switch ([`graphql`]), what bounds a stolen token ([`tokens`]), guessing
//! and racing at the hosted pages ([`pages`]), passwords kept exactly and never readable
//! ([`passwords`]), the normaliser's properties ([`normalise`]), all-or-nothing mutations
//! under injected database failures ([`atomic`]), what the server's logs hold ([`logs`]) and a
//! `serve` process killed in the middle of a send ([`crash`]).
//! The helpers they share live here.

mod atomic;
mod crash;
mod graphql;
mod logs;
mod normalise;
mod pages;
mod passwords;
mod scopes;
mod tenants;
mod tokens;

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::harness::*;

/// The root fields of the running server's schema, read by introspection over HTTP:
/// `(root type, field name)`. The tests iterate over these, so an operation added to the
/// schema without a case in their tables fails them.
async fn root_fields(t: &TestApp) -> Vec<(String, String)> {
    let (status, v) = t
        .gql(
            &t.token("a", ALL),
            "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let mut fields = Vec::new();
    for (root, key) in [("Query", "queryType"), ("Mutation", "mutationType")] {
        for f in v["data"]["__schema"][key]["fields"].as_array().unwrap() {
            fields.push((root.to_owned(), f["name"].as_str().unwrap().to_owned()));
        }
    }
    assert!(fields.len() > 10, "{v}");
    fields
}

/// A response without error locations (which differ with the text of the document).
fn without_locations(mut v: Value) -> Value {
    if let Some(errors) = v.get_mut("errors").and_then(|e| e.as_array_mut()) {
        for e in errors {
            if let Some(e) = e.as_object_mut() {
                e.remove("locations");
            }
        }
    }
    v
}

/// A `usersvc serve` process on a test's database, with everything it prints (its logs go to
/// stderr) gathered in memory. It is killed when dropped.
struct Serve {
    child: tokio::process::Child,
    base: String,
    output: Arc<Mutex<String>>,
    _data: tempfile::TempDir,
}

impl Serve {
    /// Starts `usersvc serve` on `t`'s database with `env` added, and waits until it listens.
    async fn start(t: &TestApp, env: &[(&str, &str)]) -> Serve {
        let data = tempfile::tempdir().unwrap();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_usersvc"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", &t.db_url)
            .env("USERSVC_DATA_DIR", data.path())
            .env("USERSVC_JWT_SECRET", SECRET)
            .env("USERSVC_LINK_KEY", std::str::from_utf8(LINK_KEY).unwrap())
            .env("USERSVC_LOG_FORMAT", "text")
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("USERSVC_SMTP_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run usersvc serve");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut out = output.lock().unwrap();
                    out.push_str(&line);
                    out.push('\n');
                }
            });
        }
        let base = eventually(WAIT, || async {
            let out = output.lock().unwrap().clone();
            out.lines()
                .find_map(|l| l.strip_prefix("usersvc is listening on "))
                .map(str::to_owned)
                .ok_or(out)
        })
        .await;
        Serve {
            child,
            base,
            output,
            _data: data,
        }
    }

    /// Everything the process has printed so far.
    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// SIGKILL: the process ends at once, with no chance to finish anything.
    async fn kill_9(&mut self) {
        self.child.kill().await.unwrap();
    }
}
