//! A real SMTP server inside the test process: mailin's SMTP state machine (the parser and
//! protocol of mailin-embedded) behind a tokio listener whose life the tests control — start
//! it on a port that refused connections until then (the end of an outage), make it refuse
//! mail with 550, or make it slow: it then records each message as soon as its data has
//! arrived but answers the end of the data only after a delay, as a loaded server does.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use mailin::{Action, Handler, Response, SessionBuilder};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::harness::eventually;

/// A message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub raw: String,
}

#[derive(Default)]
struct Shared {
    messages: Mutex<Vec<Received>>,
    reject: AtomicBool,
    /// Milliseconds before the answer to the end of a message's data.
    delay_ms: AtomicU64,
}

struct Collect {
    shared: Arc<Shared>,
    /// Set when a message's data has ended (its answer is the one to delay).
    ended: Arc<AtomicBool>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Collect {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.from = from.to_owned();
        self.to.clear();
        mailin::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        if self.shared.reject.load(Ordering::SeqCst) {
            return mailin::response::NO_MAILBOX;
        }
        self.to.push(to.to_owned());
        mailin::response::OK
    }

    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        self.data.clear();
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.ended.store(true, Ordering::SeqCst);
        self.shared.messages.lock().unwrap().push(Received {
            from: self.from.clone(),
            to: self.to.clone(),
            raw: String::from_utf8_lossy(&self.data).into_owned(),
        });
        mailin::response::OK
    }
}

/// The running server.
pub struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    /// A server on a free port.
    pub fn start() -> SmtpSink {
        Self::start_on(0)
    }

    /// A server on `port` (0: any free one).
    pub fn start_on(port: u16) -> SmtpSink {
        let std_listener =
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the SMTP sink");
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let listener = TcpListener::from_std(std_listener).unwrap();
        let shared = Arc::new(Shared::default());
        let state = shared.clone();
        let task = tokio::spawn(async move {
            let mut sessions = tokio::task::JoinSet::new();
            while let Ok((stream, peer)) = listener.accept().await {
                let state = state.clone();
                sessions.spawn(async move {
                    let ended = Arc::new(AtomicBool::new(false));
                    let handler = Collect {
                        ended: ended.clone(),
                        shared: state.clone(),
                        from: String::new(),
                        to: Vec::new(),
                        data: Vec::new(),
                    };
                    let mut session =
                        SessionBuilder::new("sink.usersvc.test").build(peer.ip(), handler);
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read);
                    if write
                        .write_all(&session.greeting().buffer().unwrap())
                        .await
                        .is_err()
                    {
                        return;
                    }
                    let mut line = Vec::new();
                    loop {
                        line.clear();
                        match lines.read_until(b'\n', &mut line).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let response = session.process(&line);
                        if ended.swap(false, Ordering::SeqCst) {
                            let delay =
                                Duration::from_millis(state.delay_ms.load(Ordering::SeqCst));
                            tokio::time::sleep(delay).await;
                        }
                        match response.action {
                            Action::Reply
                                if write.write_all(&response.buffer().unwrap()).await.is_err() =>
                            {
                                return;
                            }
                            Action::Close => {
                                let _ = write.write_all(&response.buffer().unwrap()).await;
                                return;
                            }
                            _ => {}
                        }
                    }
                });
            }
        });
        SmtpSink { port, shared, task }
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Refuse (550) or accept recipients from now on.
    pub fn set_reject(&self, reject: bool) {
        self.shared.reject.store(reject, Ordering::SeqCst);
    }

    /// From now on, answer the end of each message's data only after `delay` (the message is
    /// recorded before that).
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Everything received so far.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.messages.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages arrived, or panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        eventually(timeout, || async move {
            let got = self.messages();
            if got.len() >= n {
                Ok(got)
            } else {
                Err(format!("only {} of {n} mails arrived", got.len()))
            }
        })
        .await
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Received {
    fn headers(&self) -> &str {
        self.raw.split("\r\n\r\n").next().unwrap_or("")
    }

    /// A header's (unfolded, decoded when RFC 2047-encoded as lettre writes it) value.
    pub fn header(&self, name: &str) -> Option<String> {
        let unfolded = self.headers().replace("\r\n ", " ").replace("\r\n\t", " ");
        let prefix = format!("{}:", name.to_lowercase());
        unfolded
            .split("\r\n")
            .find(|l| l.to_lowercase().starts_with(&prefix))
            .map(|l| decode_words(l[prefix.len()..].trim()))
    }

    /// The Subject.
    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The plain-text body, decoded (quoted-printable or base64).
    pub fn text_body(&self) -> String {
        let raw = self.raw.replace("\r\n", "\n");
        // Find the text/plain part (or the whole body of a single-part message).
        let part = raw
            .split("\n--")
            .find(|p| p.to_lowercase().contains("content-type: text/plain"))
            .unwrap_or(&raw);
        let (head, body) = part.split_once("\n\n").unwrap_or(("", part));
        let head = head.to_lowercase();
        let body = body.split("\n--").next().unwrap_or(body);
        if head.contains("content-transfer-encoding: base64") {
            let joined: String = body.split_whitespace().collect();
            String::from_utf8_lossy(
                &base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .unwrap_or_default(),
            )
            .into_owned()
        } else if head.contains("content-transfer-encoding: quoted-printable") {
            decode_qp(body)
        } else {
            body.to_owned()
        }
    }

    /// The message as a person reads it: `\n` line ends, headers unfolded, and each part's
    /// body decoded from its transfer encoding (which its headers still name).
    pub fn readable(&self) -> String {
        let raw = self.raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
        let head = head.replace("\n ", " ").replace("\n\t", " ");
        let boundary = head.split("boundary=").nth(1).map(|b| {
            b.split(';')
                .next()
                .unwrap_or(b)
                .trim()
                .trim_matches('"')
                .to_owned()
        });
        let mut out = format!("{head}\n\n");
        match boundary {
            None => out.push_str(&decode_body(&head, body)),
            Some(b) => {
                let delimiter = format!("--{b}");
                for (i, part) in body.split(&delimiter).enumerate() {
                    if i == 0 {
                        out.push_str(part); // the preamble
                        continue;
                    }
                    out.push_str(&delimiter);
                    match part.strip_prefix('\n') {
                        Some(part) => {
                            let (h, b) = part.split_once("\n\n").unwrap_or((part, ""));
                            let h = h.replace("\n ", " ").replace("\n\t", " ");
                            out.push_str(&format!("\n{h}\n\n{}\n", decode_body(&h, b)));
                        }
                        None => out.push_str(part), // `--` after the last part, the epilogue
                    }
                }
            }
        }
        out
    }

    /// The first link in the text body containing `needle`.
    pub fn find_link(&self, needle: &str) -> Option<String> {
        self.text_body()
            .split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
            .find(|w| w.starts_with("http") && w.contains(needle))
            .map(|w| w.trim_end_matches(['.', ',', ')']).to_owned())
    }
}

/// A body decoded from the transfer encoding its headers name, without its final line end.
fn decode_body(head: &str, body: &str) -> String {
    let encoding = head
        .lines()
        .find_map(|l| {
            l.to_lowercase()
                .strip_prefix("content-transfer-encoding:")
                .map(|e| e.trim().to_owned())
        })
        .unwrap_or_default();
    let body = body.strip_suffix('\n').unwrap_or(body);
    match encoding.as_str() {
        "base64" => {
            let joined: String = body.split_whitespace().collect();
            String::from_utf8_lossy(
                &base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .unwrap_or_default(),
            )
            .into_owned()
        }
        "quoted-printable" => decode_qp(body),
        _ => body.to_owned(),
    }
}

fn decode_qp(s: &str) -> String {
    let s = s.replace("=\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if let Some(b) = hex
            .filter(|_| bytes[i] == b'=')
            .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes RFC 2047 `=?utf-8?b?…?=` / `=?utf-8?q?…?=` words.
fn decode_words(s: &str) -> String {
    let mut out = String::new();
    for word in s.split(' ') {
        let lower = word.to_lowercase();
        if lower.starts_with("=?utf-8?b?") && word.ends_with("?=") {
            let inner = &word[10..word.len() - 2];
            out.push_str(&String::from_utf8_lossy(
                &base64::engine::general_purpose::STANDARD
                    .decode(inner)
                    .unwrap_or_default(),
            ));
        } else if lower.starts_with("=?utf-8?q?") && word.ends_with("?=") {
            out.push_str(&decode_qp(&word[10..word.len() - 2].replace('_', " ")));
        } else {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}
