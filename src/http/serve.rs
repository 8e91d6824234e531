//! Accepting and serving connections (HTTP/1.1), so that slow or idle clients cannot exhaust
//! the server:
//!
//! - at most [`HttpSettings::max_connections`] connections are open at once; past it the
//!   server stops accepting, and new connections wait in the kernel's accept queue (or are
//!   refused once it is full) until an open one closes;
//! - a request's head (request line and headers) must be complete within
//!   [`HttpSettings::header_timeout`] of its first byte, and a new connection must have sent
//!   its first head within that time of being accepted;
//! - a request's body must be complete within [`HttpSettings::body_timeout`] of its head (the
//!   handler reading it gets an error: 408 on `/graphql`);
//! - a kept-alive connection with no request in progress is closed after
//!   [`HttpSettings::idle_timeout`].
//!
//! While a request is being answered, only its own deadlines apply. Stopping stops accepting at
//! once, lets the requests in progress finish, and closes idle connections.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use futures_util::task::AtomicWaker;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

use super::HttpSettings;

/// Serves `router` on `listener` until `shutdown` resolves, then waits for the connections
/// still open to finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: &HttpSettings,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let deadlines = Deadlines::from(settings);
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's own header timeout would also cut idle kept-alive connections at the same mark;
    // `Watched` keeps the two apart.
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    let mut shutdown = pin!(shutdown);
    loop {
        // A free slot first: past the cap, connections stay in the kernel's queue, holding
        // none of this process's descriptors.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.map_err(io::Error::other)?,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let busy = Arc::new(Busy::default());
        let io = TokioIo::new(Watched::new(stream, busy.clone(), deadlines));
        let conn = builder.serve_connection(io, service(router.clone(), busy, deadlines.body));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// After a failed accept: connection errors concern that connection alone; anything else (out
/// of descriptors) is logged and retried a moment later rather than in a busy loop.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// The connection deadlines.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    header: Duration,
    body: Duration,
    idle: Duration,
}

impl From<&HttpSettings> for Deadlines {
    fn from(s: &HttpSettings) -> Self {
        Deadlines {
            header: s.header_timeout,
            body: s.body_timeout,
            idle: s.idle_timeout,
        }
    }
}

/// The router as one connection's service: each request's body under its deadline, and the
/// connection marked busy until the response is ready.
fn service(
    router: Router,
    busy: Arc<Busy>,
    body_deadline: Duration,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future: Send + 'static,
> + Send
+ 'static {
    let router = TowerToHyperService::new(router);
    hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let serving = Serving::start(&busy);
        let req = req.map(|body| Body::new(BodyDeadline::new(body, body_deadline)));
        let response = hyper::service::Service::call(&router, req);
        async move {
            let response = response.await;
            drop(serving);
            response
        }
    })
}

/// Whether a connection is answering a request, and the task reading it.
#[derive(Default)]
struct Busy {
    serving: AtomicBool,
    reader: AtomicWaker,
}

/// Marks a connection as answering a request until dropped.
struct Serving(Arc<Busy>);

impl Serving {
    fn start(busy: &Arc<Busy>) -> Self {
        busy.serving.store(true, Ordering::Release);
        Serving(busy.clone())
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.serving.store(false, Ordering::Release);
        // hyper may not read again until the socket wakes it: woken here, the reader starts
        // the idle deadline now.
        self.0.reader.wake();
    }
}

/// Where a connection is, as its reads see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Accepted, waiting for a request (the header deadline runs from the accept).
    Fresh,
    /// Part of a request's head has arrived (the header deadline runs).
    Head,
    /// A request is being answered (no deadline here).
    Busy,
    /// Kept alive between requests (the idle deadline runs).
    Idle,
}

/// A connection's socket, failing its reads with `TimedOut` once the deadline of its phase has
/// passed: hyper then closes the connection.
struct Watched<I> {
    io: I,
    busy: Arc<Busy>,
    deadlines: Deadlines,
    phase: Phase,
    timer: Pin<Box<Sleep>>,
}

impl<I> Watched<I> {
    fn new(io: I, busy: Arc<Busy>, deadlines: Deadlines) -> Self {
        Watched {
            io,
            busy,
            deadlines,
            phase: Phase::Fresh,
            timer: Box::pin(tokio::time::sleep(deadlines.header)),
        }
    }

    fn restart(&mut self, after: Duration) {
        self.timer.as_mut().reset(Instant::now() + after);
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.busy.serving.load(Ordering::Acquire) {
            this.phase = Phase::Busy;
            this.busy.reader.register(cx.waker());
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        if this.phase == Phase::Busy {
            this.phase = Phase::Idle;
            let idle = this.deadlines.idle;
            this.restart(idle);
        }
        if this.timer.is_elapsed() {
            return Poll::Ready(Err(timed_out(this.phase)));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    match this.phase {
                        Phase::Idle => {
                            this.phase = Phase::Head;
                            let header = this.deadlines.header;
                            this.restart(header);
                        }
                        Phase::Fresh => this.phase = Phase::Head,
                        Phase::Head | Phase::Busy => {}
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                ready!(this.timer.as_mut().poll(cx));
                Poll::Ready(Err(timed_out(this.phase)))
            }
        }
    }
}

fn timed_out(phase: Phase) -> io::Error {
    let what = match phase {
        Phase::Idle => "idle connection timed out",
        _ => "request head not received in time",
    };
    io::Error::new(io::ErrorKind::TimedOut, what)
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The error a request body gives once its deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// A request body that must be complete by a deadline.
struct BodyDeadline {
    body: Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl BodyDeadline {
    fn new(body: Incoming, within: Duration) -> Self {
        BodyDeadline {
            body,
            deadline: Box::pin(tokio::time::sleep(within)),
        }
    }
}

impl hyper::body::Body for BodyDeadline {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        // Checked first: a body trickling in never leaves its reader pending.
        if this.deadline.is_elapsed() && !this.body.is_end_stream() {
            return Poll::Ready(Some(Err(BodyTimedOut.into())));
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        ready!(this.deadline.as_mut().poll(cx));
        Poll::Ready(Some(Err(BodyTimedOut.into())))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
