//! Copying bytes both ways between a client and an instance until both sides are done, or
//! nothing moved for the idle timeout. A side that shuts down its writing (half-close) has
//! that passed on, and still receives the rest of the other side's bytes.

use prometheus::IntCounter;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Bytes that went each way.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Copied {
    /// From the client to the instance.
    pub received: u64,
    /// From the instance to the client.
    pub sent: u64,
}

/// Copies between `client` and `instance` (tokio's `copy_bidirectional`, which passes a
/// half-close on); ends when both directions reached their end, when either fails, or after
/// `idle` without a byte either way. `counters` (received, sent) count as bytes go.
pub(super) async fn pipe<C, I>(
    client: C,
    instance: I,
    idle: Duration,
    counters: (&IntCounter, &IntCounter),
) -> Copied
where
    C: AsyncRead + AsyncWrite + Unpin,
    I: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let (received, sent) = (AtomicU64::new(0), AtomicU64::new(0));
    let mut client = Metered {
        inner: client,
        bytes: &received,
        metric: counters.0,
        last: &last,
        start,
    };
    let mut instance = Metered {
        inner: instance,
        bytes: &sent,
        metric: counters.1,
        last: &last,
        start,
    };
    let watchdog = async {
        loop {
            let due = start + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut instance) => {}
        () = watchdog => {}
    }
    Copied {
        received: received.load(Ordering::Relaxed),
        sent: sent.load(Ordering::Relaxed),
    }
}

/// One side of the connection, counting the bytes read from it (for its log line and in
/// its metric) and noting when.
struct Metered<'a, S> {
    inner: S,
    bytes: &'a AtomicU64,
    metric: &'a IntCounter,
    last: &'a AtomicU64,
    start: Instant,
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
            self.metric.inc_by(n as u64);
            let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.last.store(now, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn counter() -> IntCounter {
        IntCounter::new("bytes", "bytes").unwrap()
    }

    #[tokio::test]
    async fn a_half_closed_client_still_gets_the_whole_answer() {
        let (client, proxy_client) = tokio::io::duplex(64);
        let (proxy_instance, instance) = tokio::io::duplex(64);
        let piped = tokio::spawn(async move {
            let (received, sent) = (counter(), counter());
            let idle = Duration::from_secs(5);
            let copied = pipe(proxy_client, proxy_instance, idle, (&received, &sent)).await;
            assert_eq!((received.get(), sent.get()), (copied.received, copied.sent));
            copied
        });
        let echo = tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(instance);
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            w.write_all(&got).await.unwrap();
            w.write_all(&got).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let (mut r, mut w) = tokio::io::split(client);
        w.write_all(&[7; 1000]).await.unwrap();
        w.shutdown().await.unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, vec![7; 2000]);
        echo.await.unwrap();
        let copied = piped.await.unwrap();
        assert_eq!((copied.received, copied.sent), (1000, 2000));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_closed() {
        let (_client, proxy_client) = tokio::io::duplex(64);
        let (proxy_instance, _instance) = tokio::io::duplex(64);
        let (received, sent) = (counter(), counter());
        let started = Instant::now();
        let idle = Duration::from_secs(30);
        let piped = pipe(proxy_client, proxy_instance, idle, (&received, &sent));
        // Time is paused and jumps ahead: without the idle timeout this would end at 10 min.
        let copied = tokio::time::timeout(Duration::from_secs(600), piped)
            .await
            .expect("closed for idling");
        assert_eq!(started.elapsed().as_secs(), 30);
        assert_eq!(copied.received + copied.sent, 0);
    }
}
