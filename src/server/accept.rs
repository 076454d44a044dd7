//! The listening side of `serve`: accepts connections up to a cap (in all, and per client
//! address), serves HTTP/1.1 on each with hyper, and closes connections that are slow to send a
//! request head or sit idle between requests, so that slow or idle clients cannot hold the
//! service's sockets.
//!
//! `axum::serve` has none of these knobs, hence this accept loop. hyper's own
//! `header_read_timeout` is not used: it also runs while a kept-alive connection waits for its
//! next request, which would make the idle timeout no longer than the header timeout.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::http::client::TrustedProxies;
use crate::telemetry::metrics::Metrics;

use super::per_address::{AddressSlot, PerAddress};

/// How the service treats its connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_connections: u32,
    /// Connections one client address may hold. A trusted proxy's connections count against
    /// `max_connections` only: the clients behind it are known per request, not per connection.
    pub max_connections_per_address: u32,
    pub trusted_proxies: TrustedProxies,
}

/// Refusals being written at once; past that, connections over the cap are closed unanswered.
const REFUSALS_IN_FLIGHT: usize = 64;
/// How long a refused client gets to read its 503.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// Pause after an accept error such as EMFILE, so that it does not become a busy loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// An error body as `http::error` writes them, code included; written here by hand because the
/// refusal is sent before any HTTP handling.
const REFUSAL_BODY: &str = r#"{"error":"Too many open connections","code":"SERVICE_UNAVAILABLE"}"#;
const ADDRESS_REFUSAL_BODY: &str =
    r#"{"error":"Too many open connections from this address","code":"SERVICE_UNAVAILABLE"}"#;

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, lets every
/// connection finish its request in flight, and returns once all of them are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) {
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let per_address = PerAddress::new(limits.max_connections_per_address);
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    pause_after_accept_error(err).await;
                    continue;
                }
            },
        };
        let address_slot = if limits.trusted_proxies.trusts(remote.ip().to_canonical()) {
            None
        } else {
            match per_address.take(remote.ip()) {
                Some(slot) => Some(slot),
                None => {
                    metrics.connection_refused_per_address();
                    refuse(stream, remote, &refusals, ADDRESS_REFUSAL_BODY);
                    continue;
                }
            }
        };
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let connection = Connection {
                    router: router.clone(),
                    limits: limits.clone(),
                    metrics: metrics.clone(),
                    remote,
                    stopping: stopping.clone(),
                    _slot: slot,
                    _address_slot: address_slot,
                };
                tokio::spawn(connection.run(stream));
            }
            Err(_) => {
                metrics.connection_refused();
                refuse(stream, remote, &refusals, REFUSAL_BODY);
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    // Each open connection holds a slot until it closes: all slots back means all are done.
    let _ = slots.acquire_many(limits.max_connections).await;
}

/// Accept errors are about one connection (reset before it was taken) or about the process
/// (out of file descriptors); in the latter case wait a little for descriptors to be freed.
async fn pause_after_accept_error(err: io::Error) {
    match err.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionRefused
        | io::ErrorKind::Interrupted => {
            tracing::debug!(error = %err, "accepting a connection failed");
        }
        _ => {
            tracing::warn!(error = %err, "accepting connections failed; pausing briefly");
            tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
        }
    }
}

/// Answers a connection over a cap with a 503 and `body` and closes it, without reading its
/// request.
fn refuse(stream: TcpStream, remote: SocketAddr, refusals: &Arc<Semaphore>, body: &'static str) {
    tracing::debug!(%remote, "too many open connections: refusing one");
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let _ = tokio::time::timeout(REFUSAL_LINGER, write_refusal(stream, body)).await;
    });
}

async fn write_refusal(mut stream: TcpStream, body: &str) -> io::Result<()> {
    // Written by hand: the request is never read, so there is nothing for hyper to answer.
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\nx-request-id: {}\r\ncontent-length: {}\r\n\r\n{body}",
        uuid::Uuid::new_v4(),
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    // Closing with unread request bytes would reset the connection and could destroy the 503
    // before the client reads it: read what the client sent until it closes its side.
    let mut sink = [0u8; 4096];
    while stream.read(&mut sink).await? > 0 {}
    Ok(())
}

struct Connection {
    router: Router,
    limits: Arc<ConnectionLimits>,
    metrics: Metrics,
    remote: SocketAddr,
    stopping: watch::Receiver<bool>,
    /// Given back when the connection closes.
    _slot: OwnedSemaphorePermit,
    /// Likewise, for its address (none for a trusted proxy).
    _address_slot: Option<AddressSlot>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let (router, remote) = (self.router.clone(), self.remote);
        let requests = activity.clone();
        let service = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            let in_flight = requests.request_started();
            let router = router.clone();
            async move {
                let response = match router.oneshot(request.map(Body::new)).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(response.map(|body| tracked(body, in_flight)))
            }
        });
        let mut builder = http1::Builder::new();
        builder.header_read_timeout(None);
        let connection = builder.serve_connection(io, service);
        tokio::pin!(connection);
        // One timer, re-armed only when it fires: requests change the connection's phase
        // without waking this loop (a wake-up per request costs a measurable share of a cheap
        // request's time). Each wait is capped at the shorter timeout, so a deadline that moved
        // earlier meanwhile (a request finished, or a kept-alive connection's next request began
        // arriving) is still met exactly: the timer fires again before it.
        let recheck_every = self
            .limits
            .header_read_timeout
            .min(self.limits.keep_alive_timeout);
        let sleep = tokio::time::sleep(recheck_every);
        tokio::pin!(sleep);
        let mut shutting_down = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(remote = %self.remote, error = %err, "connection ended with an error");
                    }
                    return;
                }
                () = sleep.as_mut() => {
                    if let Some(reason) = activity.expired(&self.limits) {
                        tracing::debug!(remote = %self.remote, reason, "closing a slow connection");
                        self.metrics.connection_timed_out(reason);
                        return;
                    }
                    let recheck = Instant::now() + recheck_every;
                    let next = activity
                        .deadline(&self.limits)
                        .map_or(recheck, |deadline| deadline.min(recheck));
                    sleep.as_mut().reset(next);
                }
                _ = self.stopping.changed(), if !shutting_down => {
                    shutting_down = true;
                    // Idle connections close now; one with a request in flight after answering it.
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Where a connection stands, for its timeouts.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request head: since `since`; `first_byte` once a byte of it has arrived.
    /// `opened` while no request has been made yet.
    AwaitingHead {
        since: Instant,
        first_byte: Option<Instant>,
        opened: bool,
    },
    /// Requests are being answered (read, handled, or their response written).
    Busy { requests: usize },
}

struct Activity {
    phase: Mutex<Phase>,
}

impl Activity {
    fn new() -> Self {
        Self {
            phase: Mutex::new(Phase::AwaitingHead {
                since: Instant::now(),
                first_byte: None,
                opened: true,
            }),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the connection is to be closed unless something happens first.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        match *self.phase() {
            Phase::AwaitingHead {
                since,
                opened: true,
                ..
            } => Some(since + limits.header_read_timeout),
            Phase::AwaitingHead {
                first_byte: Some(at),
                ..
            } => Some(at + limits.header_read_timeout),
            Phase::AwaitingHead { since, .. } => Some(since + limits.keep_alive_timeout),
            Phase::Busy { .. } => None,
        }
    }

    /// Which timeout says the connection should close now, if one does.
    fn expired(&self, limits: &ConnectionLimits) -> Option<&'static str> {
        let deadline = self.deadline(limits)?;
        if Instant::now() < deadline {
            return None;
        }
        match *self.phase() {
            Phase::AwaitingHead {
                first_byte: None,
                opened: false,
                ..
            } => Some("keep_alive"),
            _ => Some("header_read"),
        }
    }

    fn bytes_arrived(&self) {
        let mut phase = self.phase();
        if let Phase::AwaitingHead {
            first_byte: first_byte @ None,
            opened: false,
            ..
        } = &mut *phase
        {
            *first_byte = Some(Instant::now());
        }
    }

    /// A request head has been read; the returned guard marks the request finished when its
    /// response has been written (or abandoned).
    fn request_started(self: &Arc<Self>) -> InFlight {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy { requests } => Phase::Busy {
                requests: requests + 1,
            },
            Phase::AwaitingHead { .. } => Phase::Busy { requests: 1 },
        };
        drop(phase);
        InFlight {
            activity: self.clone(),
        }
    }

    fn request_finished(&self) {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy { requests } if requests > 1 => Phase::Busy {
                requests: requests - 1,
            },
            _ => Phase::AwaitingHead {
                since: Instant::now(),
                first_byte: None,
                opened: false,
            },
        };
    }
}

struct InFlight {
    activity: Arc<Activity>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.activity.request_finished();
    }
}

/// The response body, marking its request finished when hyper is done with it: hyper drops the
/// body then, and with it the closure that holds `in_flight`.
fn tracked(
    body: Body,
    in_flight: InFlight,
) -> impl hyper::body::Body<Data = Bytes, Error = axum::Error> + Send + 'static {
    body.map_frame(move |frame| {
        let _held_until_dropped = &in_flight;
        frame
    })
}

/// The socket, telling `Activity` when bytes arrive.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Raises the soft limit on open files to the hard limit, so that the connection cap, not the
/// operating system's default of often 1,024 descriptors, decides how many clients fit. Returns
/// the soft limit in force afterwards (`None` where it cannot be read or raised).
pub fn raise_open_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => Some(soft),
        Err(error) => {
            tracing::warn!(%error, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}
