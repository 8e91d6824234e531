//! Slow or idle clients cannot exhaust the server (contract §9): connections trickling their
//! headers are closed, bodies and kept-alive connections have deadlines, and past
//! `USERSVC_MAX_CONNECTIONS` new connections wait while the open ones are served.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use usersvc::http::HttpSettings;

use crate::harness::*;

fn addr(t: &TestApp) -> SocketAddr {
    t.base.trim_start_matches("http://").parse().unwrap()
}

/// Reads one response off a kept-alive connection: its status and body, or `None` when the
/// server closed the connection first.
async fn read_response(stream: &mut (impl AsyncRead + Unpin)) -> Option<(u16, Value)> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|l| l.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if raw.len() >= end + 4 + length {
                let status = head.split(' ').nth(1)?.parse().ok()?;
                let body =
                    serde_json::from_slice(&raw[end + 4..end + 4 + length]).unwrap_or(Value::Null);
                return Some((status, body));
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `GET /healthz` on a connection and reads the answer.
async fn healthz(stream: &mut TcpStream) -> Option<(u16, Value)> {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: usersvc\r\n\r\n")
        .await
        .ok()?;
    read_response(stream).await
}

/// Waits until the server closes `stream` (end of file or reset), whatever it sent before.
async fn closed_by_server(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// A trickling client: the request line, then one header line every five seconds, never the
/// blank line that ends the head. Returns once the server has closed the connection.
async fn trickle(addr: SocketAddr, started: tokio::sync::mpsc::Sender<()>) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nhost: usersvc\r\n")
        .await
        .expect("first line");
    let _ = started.send(()).await;
    let mut buf = [0u8; 1024];
    for line in 0.. {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            () = tokio::time::sleep(Duration::from_secs(5)) => {
                let header = format!("x-trickle-{line}: still here\r\n");
                if stream.write_all(header.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[tokio::test]
async fn trickling_connections_are_closed_while_the_server_keeps_serving() {
    // The server's default deadlines (those of `usersvc serve`).
    let t = TestApp::new().await;
    let token = t.token("a", ALL);
    let (started_tx, mut started) = tokio::sync::mpsc::channel(200);
    let mut tricklers = tokio::task::JoinSet::new();
    for _ in 0..200 {
        tricklers.spawn(trickle(addr(&t), started_tx.clone()));
    }
    for _ in 0..200 {
        started.recv().await.expect("a trickler started");
    }
    // All 200 are open and mid-head: a normal client is served all the same, over and over,
    // until the server has closed every one of them (within 45 s).
    let all_closed = tokio::time::timeout(Duration::from_secs(45), async {
        let mut served = 0;
        loop {
            let health = t
                .client
                .get(format!("{}/healthz", t.base))
                .send()
                .await
                .expect("healthz");
            assert_eq!(health.status().as_u16(), 200);
            let (status, v) = t
                .gql(&token, "{ users(first: 1) { totalCount } }", json!({}))
                .await;
            assert_eq!((status, code(&v)), (200, String::new()), "{v}");
            served += 1;
            tokio::select! {
                done = tricklers.join_next() => match done {
                    Some(result) => result.expect("trickler"),
                    None => return served,
                },
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    })
    .await;
    let served = all_closed.expect("the server closed all 200 trickling connections within 45 s");
    assert!(served > 0);
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_wait_for_a_free_slot() {
    let t = TestApp::with(Options {
        http: HttpSettings {
            max_connections: 2,
            ..HttpSettings::default()
        },
        ..Options::default()
    })
    .await;
    let addr = addr(&t);
    // Two kept-alive connections take both slots.
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    for conn in [&mut first, &mut second] {
        assert_eq!(healthz(conn).await.map(|r| r.0), Some(200));
    }
    // A third one connects (the kernel queues it) and sends its request, but is not accepted.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: usersvc\r\n\r\n")
        .await
        .unwrap();
    eventually(WAIT, || async {
        match accept_queue(addr) {
            1 => Ok(()),
            n => Err(format!("{n} connections waiting to be accepted")),
        }
    })
    .await;
    // The open connections are still served meanwhile.
    assert_eq!(healthz(&mut second).await.map(|r| r.0), Some(200));
    assert_eq!(accept_queue(addr), 1, "still waiting");
    // One closes: its slot goes to the waiting connection, which gets its answer.
    drop(first);
    assert_eq!(read_response(&mut third).await.map(|r| r.0), Some(200));
    assert_eq!(accept_queue(addr), 0);
    assert_eq!(healthz(&mut second).await.map(|r| r.0), Some(200));
}

/// How many connections to the listening socket at `addr` wait in the kernel's accept queue
/// (Linux: the `rx_queue` of a listening socket in /proc/net/tcp).
fn accept_queue(addr: SocketAddr) -> u64 {
    let port = format!(":{:04X}", addr.port());
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let listening = fields.get(3) == Some(&"0A");
            (listening && fields.get(1)?.ends_with(&port)).then_some(fields.get(4)?.to_string())
        })
        .find_map(|queues| u64::from_str_radix(queues.split(':').nth(1)?, 16).ok())
        .expect("the listening socket")
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_refused_and_the_connection_closed() {
    let t = TestApp::with(Options {
        http: HttpSettings {
            body_timeout: Duration::from_secs(1),
            ..HttpSettings::default()
        },
        ..Options::default()
    })
    .await;
    let token = t.token("a", ALL);
    let body = br#"{"query":"{ users(first: 1) { totalCount } }"}"#;
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: usersvc\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    // One body stops half way; the other comes a byte at a time, too slowly to finish.
    for trickled in [false, true] {
        let mut stream = TcpStream::connect(addr(&t)).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body[..body.len() / 2]).await.unwrap();
        let answer = if trickled {
            let mut rest = body[body.len() / 2..].iter();
            let (mut reader, mut writer) = stream.split();
            tokio::select! {
                answer = read_response(&mut reader) => answer,
                () = async {
                    for byte in rest.by_ref() {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        if writer.write_all(&[*byte]).await.is_err() {
                            break;
                        }
                    }
                    std::future::pending::<()>().await
                } => unreachable!(),
            }
        } else {
            read_response(&mut stream).await
        };
        let (status, v) = answer.expect("an answer");
        assert_eq!((status, code(&v)), (408, "BAD_REQUEST".into()), "{v}");
        tokio::time::timeout(WAIT, closed_by_server(&mut stream))
            .await
            .expect("closed");
    }
    // The server is none the worse for it.
    let (status, v) = t
        .gql(&token, "{ users(first: 1) { totalCount } }", json!({}))
        .await;
    assert_eq!((status, code(&v)), (200, String::new()), "{v}");
}

#[tokio::test]
async fn idle_and_silent_connections_are_closed_on_their_own_deadlines() {
    let t = TestApp::with(Options {
        http: HttpSettings {
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(4),
            ..HttpSettings::default()
        },
        ..Options::default()
    })
    .await;
    // A connection that never sends a byte is closed on the header deadline.
    let mut silent = TcpStream::connect(addr(&t)).await.unwrap();
    tokio::time::timeout(WAIT, closed_by_server(&mut silent))
        .await
        .expect("closed");
    // A kept-alive connection outlives the header deadline between requests (the client
    // pauses for twice that), and is closed once idle past the idle deadline.
    let mut kept = TcpStream::connect(addr(&t)).await.unwrap();
    assert_eq!(healthz(&mut kept).await.map(|r| r.0), Some(200));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(healthz(&mut kept).await.map(|r| r.0), Some(200));
    tokio::time::timeout(WAIT, closed_by_server(&mut kept))
        .await
        .expect("closed");
}

#[tokio::test]
async fn stopping_lets_requests_in_flight_finish_and_closes_idle_connections() {
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
    let t = TestApp::new().await;
    let id = crate::create::make_user(&t, "a", "inflight@example.com").await;
    let running = t.another_instance(Options::default()).await;
    let addr = running.addr;
    // An idle kept-alive connection, and a request held up by a row lock another session has.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    assert_eq!(healthz(&mut idle).await.map(|r| r.0), Some(200));
    let mut holder = t.sql().await;
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM profiles WHERE profile_id = '{id}' FOR UPDATE"
        ))
        .await
        .unwrap();
    let (client, token) = (t.client.clone(), t.token("a", ALL));
    let in_flight = tokio::spawn(async move {
        client
            .post(format!("http://{addr}/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": "mutation($id: ID!) { disableUser(input: {profileId: $id}) { user { status } } }", "variables": { "id": id } }))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    eventually(WAIT, || async {
        #[derive(diesel::QueryableByName)]
        struct Waiting {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let found: Vec<Waiting> = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM pg_stat_activity \
              WHERE datname = '{}' AND wait_event_type = 'Lock'",
            t.db_name
        ))
        .load(&mut t.sql().await)
        .await
        .unwrap();
        if found[0].n > 0 {
            Ok(())
        } else {
            Err("no request waits on the lock yet")
        }
    })
    .await;
    // Stopping waits for the request, which gets its answer (the lock wait ends it), closes
    // the idle connection, and stops accepting.
    running.stop().await.unwrap();
    assert_eq!(in_flight.await.unwrap().ok(), Some(200));
    tokio::time::timeout(WAIT, closed_by_server(&mut idle))
        .await
        .expect("closed");
    assert!(TcpStream::connect(addr).await.is_err());
    holder.batch_execute("ROLLBACK").await.unwrap();
}
