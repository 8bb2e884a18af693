//! The accept loop: HTTP/1.1 connections up to a cap, each closed when a request head is slow
//! to come or when it sits idle, and all of them wound down in order at shutdown.
//!
//! Two clocks guard a connection, from its own activity: a client has `header_timeout` to
//! send a whole request head, from the moment it opens the connection or sends the first
//! byte of its next request; between requests it may keep the connection open and silent
//! for `idle_timeout`. A request being served has neither: the request timeout covers it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tower_service::Service;

/// Limits of each connection and of how many there are.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest time to send a complete request head.
    pub header_timeout: Duration,
    /// Longest silence between two requests on a kept-alive connection.
    pub idle_timeout: Duration,
    /// Connections open at once; more wait in the kernel's queue until one closes.
    pub max_connections: usize,
}

/// Where connections come from: a TCP listener, or a stand-in in tests.
pub(crate) trait Accept: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, SocketAddr)>> + Send;
}

impl Accept for TcpListener {
    type Io = TcpStream;

    async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = Self::accept(self).await?;
        // Answers are one small write each: send them at once.
        let _ = stream.set_nodelay(true);
        Ok((stream, peer))
    }
}

/// Serves `app` until `shutdown` turns true, then lets requests in progress finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: watch::Receiver<bool>,
) {
    accept_loop(listener, app, limits, shutdown).await;
}

pub(crate) async fn accept_loop<A: Accept>(
    mut listener: A,
    app: Router,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let mut backoff = Backoff::default();
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        match accepted {
            Ok((io, peer)) => {
                backoff.reset();
                let (app, shutdown) = (app.clone(), shutdown.clone());
                tokio::spawn(async move {
                    connection(io, peer, app, limits, shutdown).await;
                    drop(slot);
                });
            }
            // The peer gave up before it was accepted: nothing to wait for.
            Err(err) if is_connection_error(&err) => {}
            Err(err) => {
                // Out of file descriptors and the like: trying again at once would spin a
                // core and fail the same way. Waiting lets connections close.
                let wait = backoff.next();
                tracing::error!("cannot accept connections: {err}; trying again in {wait:?}");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
            }
        }
    }
    // Every slot back means every connection has finished.
    let _ = slots.acquire_many(max as u32).await;
}

fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Waits between failed accepts: 10 ms, doubling to a second.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let wait = Duration::from_millis(10) * 2u32.pow(self.failures.min(7));
        self.failures = self.failures.saturating_add(1);
        wait.min(Duration::from_secs(1))
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

async fn connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let watched = Watched {
        io,
        activity: activity.clone(),
    };
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let serving = Serving::start(requests.clone());
        let answer = app.clone().call(request);
        async move {
            let answer = answer.await;
            drop(serving);
            answer
        }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(watched), service);
    let mut conn = pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, "connection ended: {err}");
                }
                return;
            }
            () = activity.expired(limits) => {
                tracing::debug!(%peer, "connection closed: too slow or idle too long");
                return;
            }
            _ = shutdown.wait_for(|stop| *stop), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// What a connection is doing, for its two clocks.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request head, since this instant (the connection opened or the first
    /// byte of a new request came).
    Head(Instant),
    /// This many requests are being served.
    Serving(usize),
    /// The last answer was given at this instant; nothing has come since.
    Idle(Instant),
}

#[derive(Debug)]
struct Activity {
    phase: Mutex<Phase>,
    /// Mirrors `Phase::Idle`, so a read checks one flag and takes no lock.
    idle: AtomicBool,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            phase: Mutex::new(Phase::Head(Instant::now())),
            idle: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn update(&self, change: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        *phase = change(*phase);
        self.idle
            .store(matches!(*phase, Phase::Idle(_)), Ordering::Release);
        drop(phase);
        self.changed.notify_waiters();
    }

    /// Bytes came in: after an answer, that is the next request starting.
    fn read(&self) {
        if self.idle.load(Ordering::Acquire) {
            self.update(|phase| match phase {
                Phase::Idle(_) => Phase::Head(Instant::now()),
                other => other,
            });
        }
    }

    /// Ends when the connection has been waiting for a head, or idle, too long.
    async fn expired(&self, limits: ConnectionLimits) {
        loop {
            let changed = self.changed.notified();
            let mut changed = pin!(changed);
            changed.as_mut().enable();
            let phase = *self.phase.lock().unwrap_or_else(PoisonError::into_inner);
            let deadline = match phase {
                Phase::Head(since) => since + limits.header_timeout,
                Phase::Idle(since) => since + limits.idle_timeout,
                Phase::Serving(_) => {
                    changed.await;
                    continue;
                }
            };
            if deadline <= Instant::now() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = changed => {}
            }
        }
    }
}

/// A request being served; its end makes the connection idle.
struct Serving(Arc<Activity>);

impl Serving {
    fn start(activity: Arc<Activity>) -> Self {
        activity.update(|phase| match phase {
            Phase::Serving(n) => Phase::Serving(n + 1),
            Phase::Head(_) | Phase::Idle(_) => Phase::Serving(1),
        });
        Self(activity)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.update(|phase| match phase {
            Phase::Serving(n) if n > 1 => Phase::Serving(n - 1),
            _ => Phase::Idle(Instant::now()),
        });
    }
}

/// A connection's stream, noting when bytes come in.
struct Watched<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener whose every accept fails as when the process is out of file descriptors.
    struct Exhausted {
        attempts: Arc<Mutex<Vec<Instant>>>,
        stop: watch::Sender<bool>,
    }

    impl Accept for Exhausted {
        type Io = tokio::io::DuplexStream;

        async fn accept(&mut self) -> io::Result<(Self::Io, SocketAddr)> {
            let tries = {
                let mut attempts = self.attempts.lock().unwrap();
                attempts.push(Instant::now());
                attempts.len()
            };
            if tries == 20 {
                let _ = self.stop.send(true);
            }
            tokio::task::yield_now().await;
            Err(io::Error::from_raw_os_error(24))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failing_accepts_back_off_instead_of_spinning() {
        let (stop, shutdown) = watch::channel(false);
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let listener = Exhausted {
            attempts: attempts.clone(),
            stop,
        };
        let limits = ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4,
        };
        accept_loop(listener, Router::new(), limits, shutdown).await;
        let attempts = attempts.lock().unwrap();
        let spent = attempts[attempts.len() - 1] - attempts[0];
        // 10 + 20 + 40 + ... ms, a second each from the eighth on: about 13 s for 20 tries.
        assert!(
            spent >= Duration::from_secs(10),
            "{spent:?} for {} tries",
            attempts.len()
        );
    }

    #[test]
    fn the_backoff_doubles_to_a_second_and_starts_over_after_a_success() {
        let mut backoff = Backoff::default();
        let waits: Vec<u128> = (0..9).map(|_| backoff.next().as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_millis(10));
    }
}
