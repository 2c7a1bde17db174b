//! The HTTP server: accepts connections, bounds them, and serves the router on each.
//!
//! axum's own `serve` takes every connection and keeps it as long as the client likes. This
//! one, built on hyper's HTTP/1 connection:
//!
//! - closes a connection whose request headers are not complete within
//!   [`ServerConfig::header_read_timeout`] of the server starting to wait for them: on a new
//!   connection, and on a kept-alive one after each response (so an idle kept-alive
//!   connection goes after the same time, and a client sending its headers a byte at a time
//!   gains nothing);
//! - answers a request that has not finished within [`ServerConfig::request_timeout`] (one
//!   second after the GraphQL handler's own deadline, which answers first) with 503 and
//!   `TIMEOUT`, dropping what it was doing;
//! - holds at most [`ServerConfig::max_connections`] connections (WebSockets included, for
//!   their whole life), and at most [`ServerConfig::max_connections_per_address`] from one
//!   client address;
//! - keeps [`ServerConfig::reserved_connections`] of them for the paths that must answer in a
//!   flood (`/healthz`, `/readyz` and the Telegram webhook): once the others are taken, a new
//!   connection is served from the reserve, one request each, and a request for any other path
//!   gets 503 with `Retry-After`.
//!
//! A connection over the per-address bound, or when the reserve is taken too, is answered at
//! once with 503 and `Retry-After`, without reading its request, and closed.
//!
//! [`raise_descriptor_limit`] lifts the process's limit on open files to what the system
//! allows, since each connection takes a descriptor.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How the server treats connections; every field has a safe default.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Longest wait for a request's headers, from the moment the server waits for them.
    pub header_read_timeout: Duration,
    /// Longest a request may take; the GraphQL handler answers at its own, equal deadline
    /// (`Limits::request_timeout`) and this one comes a second later, for every other path.
    pub request_timeout: Duration,
    /// Most connections held at once, the reserve included.
    pub max_connections: usize,
    /// Most connections held at once from one client address.
    pub max_connections_per_address: usize,
    /// Connections kept for `/healthz`, `/readyz` and the webhook (part of the total).
    pub reserved_connections: usize,
    /// The paths served from the reserve (the webhook's is added at start).
    pub reserved_paths: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_connections_per_address: 1_000,
            reserved_connections: 100,
            reserved_paths: vec!["/healthz".to_owned(), "/readyz".to_owned()],
        }
    }
}

/// How many seconds a refused client is asked to wait (`Retry-After`).
const RETRY_AFTER_SECS: u64 = 5;
/// Descriptors kept for what is not a client connection (the database pool, files, the
/// listener, refusals in progress) when the connection bound is fitted to the process's limit.
const DESCRIPTOR_MARGIN: u64 = 256;
/// Most refusals answered at once; beyond them, a refused connection is closed unanswered.
const MAX_REFUSING: usize = 64;
/// How long a refused connection is kept open for the client to read the refusal.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// Pause after the listener failed to accept (out of descriptors, say).
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// Connections held, by pool (`general`, `reserve`).
pub const CONNECTIONS: &str = "ledgerdesk_http_connections";
/// Connections refused at once, by reason (`address`: the per-address bound; `full`: the
/// reserve is taken too).
pub const REFUSED_CONNECTIONS: &str = "ledgerdesk_http_connections_refused_total";

/// The body of every refusal for want of connections.
const BUSY_BODY: &str = r#"{"errors":[{"message":"the server holds as many connections as it may; retry in a few seconds","extensions":{"code":"UNAVAILABLE"}}]}"#;

/// Raises the process's soft limit on open files to its hard limit, and answers the limit now
/// in force (`None`: unknown, or unlimited).
pub fn raise_descriptor_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    if limit.current != limit.maximum {
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                tracing::info!(from = ?limit.current, to = ?limit.maximum, "raised the open-file limit");
            }
            Err(error) => {
                tracing::warn!(%error, limit = ?limit.current, "cannot raise the open-file limit");
            }
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Serves `router` on `listener` until `shutdown` completes, then waits for the requests in
/// flight (an open WebSocket is not waited for). `descriptors` is the process's open-file
/// limit, if known: the connection bound is lowered to fit in it.
///
/// # Errors
/// None so far: a failed accept is logged and retried.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    mut config: ServerConfig,
    descriptors: Option<u64>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    if let Some(descriptors) = descriptors {
        let fits = descriptors.saturating_sub(DESCRIPTOR_MARGIN).max(16);
        if (config.max_connections as u64) > fits {
            tracing::warn!(
                configured = config.max_connections,
                descriptors,
                "the open-file limit allows fewer connections than configured; lowering the bound"
            );
            config.max_connections = usize::try_from(fits).unwrap_or(usize::MAX);
        }
    }
    metrics::describe_gauge!(
        CONNECTIONS,
        "HTTP connections held, by pool (general, reserve)"
    );
    metrics::describe_counter!(
        REFUSED_CONNECTIONS,
        "HTTP connections refused at once, by reason (address, full)"
    );
    let connections = Arc::new(Connections::new(&config));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let reserved: Arc<[String]> = config.reserved_paths.clone().into();
    // Each connection's task holds a clone; all are gone once every connection ended.
    let (running, mut all_ended) = tokio::sync::mpsc::channel::<Infallible>(1);
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !is_connection_error(&error) {
                        tracing::warn!(%error, "cannot accept a connection; trying again");
                        tokio::time::sleep(ACCEPT_PAUSE).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let ticket = match connections.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(reason) => {
                metrics::counter!(REFUSED_CONNECTIONS, "reason" => reason.label()).increment(1);
                if let Ok(permit) = refusing.clone().try_acquire_owned() {
                    tokio::spawn(async move {
                        refuse(stream).await;
                        drop(permit);
                    });
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let reserve_only = ticket.reserved.then(|| reserved.clone());
        let mut builder = builder.clone();
        if ticket.reserved {
            // One request each: the reserve is for short visits.
            builder.keep_alive(false);
        }
        let service = hyper::service::service_fn({
            let router = router.clone();
            let request_timeout = config.request_timeout + Duration::from_secs(1);
            move |request: Request<Incoming>| {
                handle(
                    router.clone(),
                    request,
                    peer,
                    reserve_only.clone(),
                    request_timeout,
                )
            }
        });
        // The ticket goes with the socket, also into a WebSocket it is upgraded to.
        let io = Counted {
            io: TokioIo::new(stream),
            _ticket: ticket,
        };
        let connection = builder.serve_connection(io, service).with_upgrades();
        let stop = stop.clone();
        let running = running.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = served {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(running);
        });
    }
    drop(listener);
    stop.cancel();
    drop(running);
    let _ = all_ended.recv().await;
    Ok(())
}

/// Serves one request: from the reserve only its paths, and every one within the deadline.
async fn handle(
    router: Router,
    mut request: Request<Incoming>,
    peer: SocketAddr,
    reserve_only: Option<Arc<[String]>>,
    timeout: Duration,
) -> Result<Response<Body>, Infallible> {
    if let Some(paths) = reserve_only
        && !paths.iter().any(|path| path == request.uri().path())
    {
        return Ok(busy());
    }
    request.extensions_mut().insert(ConnectInfo(peer));
    let served = tokio::time::timeout(timeout, router.oneshot(request.map(Body::new))).await;
    Ok(match served {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) => {
            let body = format!(
                r#"{{"errors":[{{"message":"the request took longer than {} s and was stopped","extensions":{{"code":"TIMEOUT"}}}}]}}"#,
                timeout.as_secs()
            );
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
    })
}

/// 503 with `Retry-After`, for a request the reserve does not serve.
fn busy() -> Response<Body> {
    let mut response = Response::new(Body::from(BUSY_BODY));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Answers a connection that is not admitted with 503, without reading its request, and
/// closes it once the client has had a moment to read the answer (closing with its request
/// unread would reset the connection and lose the answer).
async fn refuse(mut stream: TcpStream) {
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: {RETRY_AFTER_SECS}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BUSY_BODY}",
        BUSY_BODY.len()
    );
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut unread = [0u8; 4096];
        while stream.read(&mut unread).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}

/// Errors of one connection, not of the listener: nothing to wait for.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// The connections held, by kind and by client address.
#[derive(Debug)]
struct Connections {
    general_bound: usize,
    reserve_bound: usize,
    per_address: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    general: usize,
    reserve: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One admitted connection, counted until dropped.
#[derive(Debug)]
struct Ticket {
    connections: Arc<Connections>,
    address: IpAddr,
    reserved: bool,
}

impl Connections {
    fn new(config: &ServerConfig) -> Connections {
        let total = config.max_connections.max(1);
        let reserve = config.reserved_connections.min(total.saturating_sub(1));
        Connections {
            general_bound: total - reserve,
            reserve_bound: reserve,
            per_address: config.max_connections_per_address.max(1),
            counts: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Every change is made in one step under the lock: a panic leaves counts whole.
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a connection from `address`: to the general pool while it has room, else to the
    /// reserve; refused when the address holds its bound or both are taken.
    fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Ticket, Refused> {
        let mut counts = self.lock();
        if counts.by_address.get(&address).copied().unwrap_or(0) >= self.per_address {
            return Err(Refused::Address);
        }
        let reserved = if counts.general < self.general_bound {
            counts.general += 1;
            false
        } else if counts.reserve < self.reserve_bound {
            counts.reserve += 1;
            true
        } else {
            return Err(Refused::Full);
        };
        *counts.by_address.entry(address).or_default() += 1;
        counts.publish(reserved);
        Ok(Ticket {
            connections: self.clone(),
            address,
            reserved,
        })
    }
}

/// Why a connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// Its address holds as many as it may.
    Address,
    /// The general pool and the reserve are taken.
    Full,
}

impl Refused {
    fn label(self) -> &'static str {
        match self {
            Refused::Address => "address",
            Refused::Full => "full",
        }
    }
}

impl Counts {
    /// Sets the gauge of the pool that just changed.
    fn publish(&self, reserved: bool) {
        let (pool, held) = if reserved {
            ("reserve", self.reserve)
        } else {
            ("general", self.general)
        };
        #[expect(clippy::cast_precision_loss, reason = "a count of connections")]
        metrics::gauge!(CONNECTIONS, "pool" => pool).set(held as f64);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.connections.lock();
        if self.reserved {
            counts.reserve = counts.reserve.saturating_sub(1);
        } else {
            counts.general = counts.general.saturating_sub(1);
        }
        if let Some(held) = counts.by_address.get_mut(&self.address) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.by_address.remove(&self.address);
            }
        }
        counts.publish(self.reserved);
    }
}

/// A client's socket with its place in the count.
#[derive(Debug)]
struct Counted {
    io: TokioIo<TcpStream>,
    _ticket: Ticket,
}

impl hyper::rt::Read for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connections(total: usize, per_address: usize, reserve: usize) -> Arc<Connections> {
        Arc::new(Connections::new(&ServerConfig {
            max_connections: total,
            max_connections_per_address: per_address,
            reserved_connections: reserve,
            ..ServerConfig::default()
        }))
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let now = raise_descriptor_limit();
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(now, limit.current);
        assert_eq!(limit.current, limit.maximum);
    }

    #[test]
    fn admits_to_the_general_pool_then_the_reserve_and_counts_every_address() {
        let pool = connections(4, 3, 1);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let held: Vec<Ticket> = (0..3).filter_map(|_| pool.admit(a).ok()).collect();
        assert_eq!(held.len(), 3);
        assert!(held.iter().all(|ticket| !ticket.reserved));
        assert_eq!(
            pool.admit(a).err(),
            Some(Refused::Address),
            "a is at its bound"
        );
        let reserved = pool
            .admit(b)
            .unwrap_or_else(|_| panic!("b gets the reserve"));
        assert!(reserved.reserved);
        assert_eq!(
            pool.admit(b).err(),
            Some(Refused::Full),
            "everything is taken"
        );
        drop(held);
        let again = pool.admit(b).unwrap_or_else(|_| panic!("room again"));
        assert!(!again.reserved);
        drop((again, reserved));
        let counts = pool.lock();
        assert!(counts.by_address.is_empty(), "no address is kept once gone");
        assert_eq!((counts.general, counts.reserve), (0, 0));
    }
}
