//! A TCP proxy between a test server and PostgreSQL that slows, stalls or cuts what goes
//! through it, as a slow network, a partition or a database restart would (the `latency`,
//! `timeout` and `reset_peer` toxics of Toxiproxy).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::watch;

/// What the proxy does to the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Passes it on.
    Pass,
    /// Holds every chunk this long before passing it on.
    Latency(Duration),
    /// Passes nothing, in either direction, on old or new connections, and closes nothing: a
    /// partition.
    Stall,
    /// Resets every connection and every new one: the database is down.
    Down,
}

/// Where PostgreSQL listens.
#[derive(Debug, Clone)]
enum Upstream {
    Unix(PathBuf),
    Tcp(String),
}

/// A running proxy; it stops when dropped.
pub struct Proxy {
    /// The URL of the same database through the proxy.
    pub url: String,
    mode: watch::Sender<Mode>,
    open: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy in front of the database of `db_url` (a Unix socket or TCP).
    pub async fn start(db_url: &str) -> Proxy {
        let mut url = url::Url::parse(db_url).expect("a database URL");
        let port = url.port().unwrap_or(5432);
        let socket_dir = url
            .query_pairs()
            .find(|(k, _)| k == "host")
            .map(|(_, v)| v.into_owned())
            .or_else(|| {
                let host = url.host_str()?;
                let host = percent_encoding::percent_decode_str(host)
                    .decode_utf8()
                    .ok()?;
                host.starts_with('/').then(|| host.into_owned())
            });
        let upstream = match socket_dir {
            Some(dir) => Upstream::Unix(PathBuf::from(dir).join(format!(".s.PGSQL.{port}"))),
            None => Upstream::Tcp(format!("{}:{port}", url.host_str().expect("a host"))),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let rest: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "host")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !rest.is_empty() {
            url.query_pairs_mut().extend_pairs(rest);
        }
        url.set_host(Some("127.0.0.1")).expect("host");
        url.set_port(Some(addr.port())).expect("port");
        let (mode, watching) = watch::channel(Mode::Pass);
        let open = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(accept(listener, upstream, watching, open.clone()));
        Proxy {
            url: url.to_string(),
            mode,
            open,
            task,
        }
    }

    /// Changes what the proxy does, at once, to every connection.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Connections open through the proxy.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.set(Mode::Down);
        self.task.abort();
    }
}

async fn accept(
    listener: TcpListener,
    upstream: Upstream,
    mode: watch::Receiver<Mode>,
    open: Arc<AtomicUsize>,
) {
    while let Ok((client, _)) = listener.accept().await {
        tokio::spawn(relay(client, upstream.clone(), mode.clone(), open.clone()));
    }
}

/// Counts a connection as open while it lives.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::SeqCst);
        Counted(open.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One client connection, relayed to PostgreSQL until either side closes it or the database
/// goes down.
async fn relay(
    client: TcpStream,
    upstream: Upstream,
    mut mode: watch::Receiver<Mode>,
    open: Arc<AtomicUsize>,
) {
    // Closing the client's socket then resets it, as a crashed server's host would.
    let _ = client.set_zero_linger();
    if *mode.borrow() == Mode::Down {
        return;
    }
    let _counted = Counted::new(&open);
    let (client_read, client_write) = client.into_split();
    let (to_server, to_client) = (mode.clone(), mode.clone());
    let cut = async {
        let _ = mode.wait_for(|m| *m == Mode::Down).await;
    };
    match upstream {
        Upstream::Unix(path) => {
            let Ok(server) = UnixStream::connect(path).await else {
                return;
            };
            let (server_read, server_write) = server.into_split();
            tokio::select! {
                () = pump(client_read, server_write, to_server) => {}
                () = pump(server_read, client_write, to_client) => {}
                () = cut => {}
            }
        }
        Upstream::Tcp(addr) => {
            let Ok(server) = TcpStream::connect(addr).await else {
                return;
            };
            let (server_read, server_write) = server.into_split();
            tokio::select! {
                () = pump(client_read, server_write, to_server) => {}
                () = pump(server_read, client_write, to_client) => {}
                () = cut => {}
            }
        }
    }
}

/// Copies one direction, as the mode allows.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if mode.wait_for(|m| *m != Mode::Stall).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // A chunk read just before a stall waits for the stall to end.
        let now = match mode.wait_for(|m| *m != Mode::Stall).await {
            Ok(m) => *m,
            Err(_) => return,
        };
        if let Mode::Latency(delay) = now {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
