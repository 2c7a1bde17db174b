//! A database outage on demand: [`DatabaseProxy`] forwards TCP connections to the Postgres
//! server of `DATABASE_URL` until the test cuts it, and again once the test restores it.
//!
//! Cut, it ends every connection it carries (both sides, so the server's backends go too) and
//! answers each new one by closing it at once, as a database that is down, restarting or
//! unreachable does to a client. What the application does meanwhile is the application's
//! own: nothing of it is changed or mocked. The test's own pools connect to Postgres directly
//! and keep working through the outage.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A TCP proxy in front of the test server's Postgres. Stops when dropped.
#[derive(Debug)]
pub struct DatabaseProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accepting: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    upstream: (String, u16),
    open: AtomicBool,
    refused: AtomicU64,
    carried: AtomicU64,
    /// Bumped by each cut: every connection carried before it ends.
    cuts: watch::Sender<u64>,
}

impl DatabaseProxy {
    /// A proxy on a free port of 127.0.0.1 in front of the server `DATABASE_URL` names, open.
    ///
    /// # Panics
    /// When `DATABASE_URL` is not a URL with a host, or no port is free.
    pub async fn start() -> DatabaseProxy {
        let server = url::Url::parse(&crate::database::server_url())
            .expect("DATABASE_URL is a postgres:// URL");
        let host = server
            .host_str()
            .expect("DATABASE_URL names a host")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = server.port().unwrap_or(5432);
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("a free port on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            upstream: (host, port),
            open: AtomicBool::new(true),
            refused: AtomicU64::new(0),
            carried: AtomicU64::new(0),
            cuts: watch::Sender::new(0),
        });
        let accepting = tokio::spawn(accept(listener, Arc::clone(&shared)));
        DatabaseProxy {
            addr,
            shared,
            accepting,
        }
    }

    /// `url` (a `postgres://` URL of the test server) going through the proxy instead.
    ///
    /// # Panics
    /// When `url` is not a URL.
    #[must_use]
    pub fn url_for(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).expect("a postgres:// URL");
        url.set_host(Some("127.0.0.1")).expect("a URL with a host");
        url.set_port(Some(self.addr.port()))
            .expect("a URL that takes a port");
        url.to_string()
    }

    /// Cuts the database off: ends every connection carried now, and closes each new one as
    /// soon as it is accepted, until [`DatabaseProxy::restore`].
    pub fn cut(&self) {
        self.shared.open.store(false, Ordering::SeqCst);
        self.shared.cuts.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.shared.open.store(true, Ordering::SeqCst);
    }

    /// How many connections were refused while cut: the application's attempts to reach the
    /// database during the outage.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// How many connections were carried to the server in all.
    #[must_use]
    pub fn carried(&self) -> u64 {
        self.shared.carried.load(Ordering::SeqCst)
    }
}

impl Drop for DatabaseProxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut();
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if !shared.open.load(Ordering::SeqCst) {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            reset(&client);
            continue;
        }
        tokio::spawn(carry(client, Arc::clone(&shared)));
    }
}

/// Copies bytes both ways until either side closes or the proxy is cut.
async fn carry(mut client: TcpStream, shared: Arc<Shared>) {
    let mut cuts = shared.cuts.subscribe();
    cuts.borrow_and_update();
    let (host, port) = &shared.upstream;
    let Ok(mut server) = TcpStream::connect((host.as_str(), *port)).await else {
        return;
    };
    if !shared.open.load(Ordering::SeqCst) {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        reset(&client);
        return;
    }
    shared.carried.fetch_add(1, Ordering::SeqCst);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cuts.changed() => {
            reset(&client);
            reset(&server);
        }
    }
    // Both ends drop here: the client sees its connection end, the server its backend's.
}

/// Makes dropping `stream` reset the connection (RST) rather than close it in order, as a
/// host that went away does: the peer's next read or write fails at once, whatever it was
/// doing.
fn reset(stream: &TcpStream) {
    // Without it the connection still ends, only in order: nothing to handle.
    let _ = stream.set_zero_linger();
}
