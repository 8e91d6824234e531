//! Integration tests of the private PostgreSQL cluster: real initdb and postgres, real
//! connections through tokio-postgres (which proves the URL format), and death-signal checks
//! through a child process that dies without stopping its server.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use serde_json::json;
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;
use usersvc::db::embedded::{EmbeddedError, EmbeddedOptions, EmbeddedPostgres};

use crate::client::CreateEmail;
use crate::create::{email_input, make_user};
use crate::harness::{ALL, TestApp, cluster_log, code};

/// A short folder under /tmp (socket paths are limited to 107 bytes). `traversable` opens it to
/// other users (0755) so that, when the tests run as root, the `postgres` user can reach it;
/// otherwise it is 0700, which makes root fall back to a folder of the postgres user's.
pub(crate) fn short_tmp(traversable: bool) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("emb")
        .tempdir_in("/tmp")
        .expect("create temp folder");
    let mode = if traversable { 0o755 } else { 0o700 };
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode))
        .expect("chmod temp folder");
    dir
}

fn opts(root: &Path, ephemeral: bool) -> EmbeddedOptions {
    EmbeddedOptions {
        root: root.to_path_buf(),
        ephemeral,
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    tokio::spawn(connection);
    client
}

/// Alive and not a zombie: PID 1 in some sandboxes never reaps orphans, and a dead postmaster
/// that nobody reaped still has a /proc entry.
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_query_stop_then_restart_keeps_data() {
    let tmp = short_tmp(true);
    let root = tmp.path().join("pg");
    let pg = EmbeddedPostgres::start(opts(&root, true))
        .await
        .expect("start");
    assert!(pg.owned());
    assert!(pg.socket_dir().is_absolute());
    assert_eq!(pg.socket_dir(), root.join("run"));
    assert!(root.join("data/PG_VERSION").exists());
    assert!(root.join("postgres.log").exists());

    // The URL means the socket and nothing else.
    let config: tokio_postgres::Config = pg.url("odd name/ü").parse().expect("parse url");
    assert_eq!(
        config.get_hosts(),
        &[Host::Unix(pg.socket_dir().to_path_buf())]
    );
    assert_eq!(config.get_dbname(), Some("odd name/ü"));
    assert_eq!(config.get_user(), Some("postgres"));
    assert_eq!(config.get_ports(), &[5432]);

    let admin = connect(&pg.url("postgres")).await;
    admin
        .batch_execute("CREATE DATABASE t1")
        .await
        .expect("create database");
    let fsync: String = admin
        .query_one("SHOW fsync", &[])
        .await
        .expect("show fsync")
        .get(0);
    assert_eq!(fsync, "off");
    let client = connect(&pg.url("t1")).await;
    let one: i32 = client
        .query_one("SELECT 1", &[])
        .await
        .expect("select 1")
        .get(0);
    assert_eq!(one, 1);
    client
        .batch_execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
        .await
        .expect("create table");

    let pid = pg.pid().expect("pid");
    assert!(process_alive(pid));
    pg.stop().await.expect("stop");
    assert!(!process_alive(pid), "postmaster {pid} still running");
    assert!(!root.join("data/postmaster.pid").exists());

    // Same folder again, durable this time: no initdb, the data is still there.
    let pg = EmbeddedPostgres::start(opts(&root, false))
        .await
        .expect("restart");
    assert!(pg.owned());
    let client = connect(&pg.url("t1")).await;
    let kept: String = client
        .query_one("SELECT v FROM kept", &[])
        .await
        .expect("select kept")
        .get(0);
    assert_eq!(kept, "still here");
    let fsync: String = client
        .query_one("SHOW fsync", &[])
        .await
        .expect("show fsync")
        .get(0);
    assert_eq!(fsync, "on");
    pg.stop().await.expect("stop again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_start_reuses_the_running_cluster() {
    let tmp = short_tmp(true);
    let root = tmp.path().join("pg");
    let first = EmbeddedPostgres::start(opts(&root, true))
        .await
        .expect("start");
    let second = EmbeddedPostgres::start(opts(&root, true))
        .await
        .expect("start again");
    assert!(first.owned());
    assert!(!second.owned());
    assert_eq!(second.pid(), first.pid());
    assert_eq!(second.url("postgres"), first.url("postgres"));
    let client = connect(&second.url("postgres")).await;
    client.batch_execute("SELECT 1").await.expect("query");

    second
        .stop()
        .await
        .expect("stopping a reused cluster is a no-op");
    let client = connect(&first.url("postgres")).await;
    client
        .batch_execute("SELECT 1")
        .await
        .expect("still running after the reuser stopped");
    let pid = first.pid().expect("pid");
    first.stop().await.expect("stop");
    assert!(!process_alive(pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_share_one_server() {
    let tmp = short_tmp(true);
    let root = tmp.path().join("pg");
    let (a, b) = tokio::join!(
        EmbeddedPostgres::start(opts(&root, true)),
        EmbeddedPostgres::start(opts(&root, true))
    );
    let (a, b) = (a.expect("start a"), b.expect("start b"));
    assert_ne!(
        a.owned(),
        b.owned(),
        "exactly one of them starts the server"
    );
    assert_eq!(a.pid(), b.pid());
    let (owner, other) = if a.owned() { (a, b) } else { (b, a) };
    other.stop().await.expect("no-op");
    owner.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_an_owned_handle_shuts_the_server_down() {
    let tmp = short_tmp(true);
    let root = tmp.path().join("pg");
    let pg = EmbeddedPostgres::start(opts(&root, true))
        .await
        .expect("start");
    let pid = pg.pid().expect("pid");
    drop(pg);
    assert!(
        wait_until(Duration::from_secs(15), || !process_alive(pid)),
        "postmaster {pid} survived the drop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_long_socket_path_is_refused() {
    let tmp = short_tmp(true);
    let root = tmp.path().join("x".repeat(100));
    let err = EmbeddedPostgres::start(opts(&root, true))
        .await
        .expect_err("socket path too long");
    assert!(
        matches!(err, EmbeddedError::SocketPathTooLong { .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("USERSVC_DATA_DIR"), "{message}");
    assert!(message.contains(".s.PGSQL.5432"), "{message}");
}

/// As root, a `root` the postgres user cannot reach (under a 0700 folder) moves the
/// cluster to /var/lib/postgresql/usersvc-clusters/<hash>, linked from `root/cluster`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_root_falls_back_to_a_postgres_owned_folder() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: only applies when running as root");
        return;
    }
    let tmp = short_tmp(false);
    let root = tmp.path().join("pg");
    let pg = EmbeddedPostgres::start(opts(&root, true))
        .await
        .expect("start");
    let target = std::fs::read_link(root.join("cluster")).expect("cluster symlink");
    let base = if Path::new("/var/lib/postgresql").is_dir() {
        "/var/lib/postgresql/usersvc-clusters"
    } else {
        "/var/tmp/usersvc-clusters"
    };
    assert!(target.starts_with(base), "{}", target.display());
    assert_eq!(pg.socket_dir(), target.join("run"));
    assert_eq!(pg.data_dir(), target.join("data"));
    assert_eq!(pg.log_path(), root.join("postgres.log"));
    let client = connect(&pg.url("postgres")).await;
    client.batch_execute("SELECT 1").await.expect("query");
    pg.stop().await.expect("stop");

    // Started again, it follows the link rather than deciding afresh.
    let pg = EmbeddedPostgres::start(opts(&root, true))
        .await
        .expect("restart");
    assert_eq!(pg.data_dir(), target.join("data"));
    pg.stop().await.expect("stop again");
    std::fs::remove_dir_all(&target).expect("remove the fallback cluster");
    if let Some(parent) = target.parent() {
        let _ = std::fs::remove_dir(parent); // only when no other cluster is there
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_pid_file_is_ignored() {
    let tmp = short_tmp(true);
    let root = tmp.path().join("pg");
    let pg = EmbeddedPostgres::start(opts(&root, true))
        .await
        .expect("start");
    pg.stop().await.expect("stop");
    // What a killed server leaves behind, with a pid that cannot exist.
    std::fs::write(root.join("data/postmaster.pid"), "2147483647\n").expect("write pid file");
    let pg = EmbeddedPostgres::start(opts(&root, true))
        .await
        .expect("start over a stale pid file");
    assert!(pg.owned());
    connect(&pg.url("postgres")).await;
    pg.stop().await.expect("stop again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_failure_reports_the_log_tail() {
    let tmp = short_tmp(true);
    let root = tmp.path().join("pg");
    let pg = EmbeddedPostgres::start(opts(&root, true))
        .await
        .expect("start");
    pg.stop().await.expect("stop");
    let auto_conf = root.join("data/postgresql.auto.conf");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&auto_conf)
        .expect("open postgresql.auto.conf");
    writeln!(file, "shared_buffers = 'not a size'").expect("break the config");
    let err = EmbeddedPostgres::start(opts(&root, true))
        .await
        .expect_err("a broken config must fail");
    assert!(matches!(err, EmbeddedError::ExitedEarly { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("shared_buffers"), "{message}");
    assert!(message.contains("postgres.log"), "{message}");
}

/// PostgreSQL reports a unique violation with a DETAIL line that quotes the key, which for an
/// identity is an email address. The cluster logs tersely, so no address reaches its log:
/// neither from a create of an existing user, nor from concurrent creates that race for one
/// address and meet at the unique index, nor from any unique violation at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_violations_leave_no_email_address_in_the_server_log() {
    let t = TestApp::new().await;
    let Some(log) = cluster_log() else {
        eprintln!("skipped: with TEST_DATABASE_URL the server log is not ours to read");
        return;
    };
    let tok = t.token("a", ALL);
    // Unique to this test in this run: the log is shared by every test of the process.
    let taken = format!("taken-{}@example.com", t.db_name);
    let raced = format!("raced-{}@example.com", t.db_name);
    let probed = format!("probed-{}@example.com", t.db_name);

    make_user(&t, "a", &taken).await;
    let again = t
        .run_err::<CreateEmail>(
            &tok,
            crate::client::create_email::Variables {
                input: email_input(&taken, Some("password-123")),
            },
        )
        .await;
    assert_eq!(again, "USER_ALREADY_EXISTS");

    // The server checks before it inserts, so only a race reaches the unique index.
    let query = "mutation($e: String!) { createUserEmailPassword(input: {email: $e, password: \"long enough pw\"}) { user { profileId } } }";
    let creates = (0..8).map(|_| t.gql(&tok, query, json!({ "e": raced })));
    let codes: Vec<String> = futures_util::future::join_all(creates)
        .await
        .into_iter()
        .map(|(_, body)| code(&body))
        .collect();
    assert_eq!(
        codes.iter().filter(|c| c.is_empty()).count(),
        1,
        "{codes:?}"
    );
    assert!(
        codes
            .iter()
            .all(|c| c.is_empty() || c == "USER_ALREADY_EXISTS"),
        "{codes:?}"
    );

    // A unique violation for certain, whatever the race did, with the address as a parameter
    // as the server sends it.
    let mut conn = t.sql().await;
    diesel::sql_query("CREATE TEMP TABLE log_probe (email text UNIQUE)")
        .execute(&mut conn)
        .await
        .expect("create table");
    for attempt in 0..2 {
        let inserted = diesel::sql_query("INSERT INTO log_probe VALUES ($1)")
            .bind::<Text, _>(&probed)
            .execute(&mut conn)
            .await;
        assert_eq!(inserted.is_ok(), attempt == 0, "{inserted:?}");
    }

    // The server writes its log line before it answers, so everything is in the file now.
    let text = std::fs::read_to_string(&log).expect("read the server log");
    assert!(
        text.contains("violates unique constraint \"log_probe_email_key\""),
        "the violation was not logged at all"
    );
    for address in [&taken, &raced, &probed] {
        let leaks: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(address.as_str()))
            .collect();
        assert!(
            leaks.is_empty(),
            "{address} in {}:\n{}",
            log.display(),
            leaks.join("\n")
        );
    }
}

/// Why [`EmbeddedPostgres::url`] puts the socket folder in the host part: tokio-postgres adds a
/// `?host=` to the authority's hosts rather than replacing them, so the other form would try
/// TCP localhost first.
#[test]
fn query_host_form_would_also_try_tcp_localhost() {
    let config: tokio_postgres::Config = "postgresql://postgres@localhost/db?host=%2Ftmp%2Frun"
        .parse()
        .expect("parse");
    assert_eq!(
        config.get_hosts(),
        &[
            Host::Tcp("localhost".into()),
            Host::Unix(PathBuf::from("/tmp/run"))
        ]
    );
}

const CHILD_ROOT: &str = "EMBEDDED_TEST_CHILD_ROOT";
const CHILD_MODE: &str = "EMBEDDED_TEST_CHILD_MODE";

/// Run by `postmaster_exits_when_its_process_dies` in a child process: starts a cluster, prints
/// the postmaster's pid, and dies without stopping it, either by SIGKILL or by simply returning
/// (the test binary then exits). Does nothing when run by hand.
#[test]
#[ignore = "helper run in a child process by postmaster_exits_when_its_process_dies"]
fn child_process_helper() {
    let Some(root) = std::env::var_os(CHILD_ROOT) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let pg = runtime
        .block_on(EmbeddedPostgres::start(opts(&PathBuf::from(root), true)))
        .expect("start in child");
    println!("POSTMASTER_PID={}", pg.pid().expect("pid"));
    std::io::stdout().flush().expect("flush");
    if std::env::var(CHILD_MODE).as_deref() == Ok("kill") {
        // Ends the process on the spot.
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
    // Neither stop() nor Drop: only the death signal can end the server now.
    std::mem::forget(pg);
}

#[test]
fn postmaster_exits_when_its_process_dies() {
    let tmp = short_tmp(true);
    let root = tmp.path().join("pg");
    for mode in ["kill", "exit"] {
        let out = Command::new(std::env::current_exe().expect("current exe"))
            .args([
                "--exact",
                "embedded::child_process_helper",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ROOT, &root)
            .env(CHILD_MODE, mode)
            .output()
            .expect("run child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let pid: u32 = stdout
            .lines()
            .find_map(|line| line.split_once("POSTMASTER_PID=").map(|(_, pid)| pid))
            .and_then(|pid| pid.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "{mode}: no pid from child ({}):\n{stdout}\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        assert_eq!(
            out.status.success(),
            mode == "exit",
            "{mode}: {}",
            out.status
        );
        assert!(
            wait_until(Duration::from_secs(15), || !process_alive(pid)),
            "{mode}: postmaster {pid} outlived its process"
        );
        // SIGINT means a fast, clean shutdown: the pid file is gone too.
        assert!(
            wait_until(Duration::from_secs(5), || !root
                .join("data/postmaster.pid")
                .exists()),
            "{mode}: postmaster.pid left behind"
        );
    }
}
