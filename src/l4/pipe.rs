//! Copying bytes both ways between a client and an instance until both sides are done, or
//! nothing moved for the idle timeout. A side that shuts down its writing (half-close) has
//! that passed on, and still receives the rest of the other side's bytes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Bytes copied in one direction; big enough for a full TCP window's worth per read.
const BUFFER: usize = 16 * 1024;

/// Bytes that went each way.
#[derive(Debug, Default, Clone, Copy)]
pub struct Copied {
    /// From the client to the instance.
    pub received: u64,
    /// From the instance to the client.
    pub sent: u64,
}

/// Copies between `client` and `instance`; ends when both directions reached their end
/// (or failed), or after `idle` without a byte either way.
pub async fn pipe<C, I>(client: C, instance: I, idle: Duration) -> Copied
where
    C: AsyncRead + AsyncWrite,
    I: AsyncRead + AsyncWrite,
{
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let (received, sent) = (AtomicU64::new(0), AtomicU64::new(0));
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut instance_read, mut instance_write) = tokio::io::split(instance);
    let both = async {
        tokio::join!(
            copy(
                &mut client_read,
                &mut instance_write,
                &received,
                &last,
                start
            ),
            copy(&mut instance_read, &mut client_write, &sent, &last, start),
        )
    };
    let watchdog = async {
        loop {
            let quiet_since = start + Duration::from_millis(last.load(Ordering::Relaxed));
            let due = quiet_since + idle;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    };
    tokio::select! {
        _ = both => {}
        () = watchdog => {}
    }
    Copied {
        received: received.load(Ordering::Relaxed),
        sent: sent.load(Ordering::Relaxed),
    }
}

/// One direction: reads until the end (or an error), then shuts down the writing side.
async fn copy<R, W>(from: &mut R, to: &mut W, count: &AtomicU64, last: &AtomicU64, start: Instant)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0; BUFFER];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() || to.flush().await.is_err() {
            return;
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
        let now = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        last.store(now, Ordering::Relaxed);
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_half_closed_client_still_gets_the_whole_answer() {
        let (client, proxy_client) = tokio::io::duplex(64);
        let (proxy_instance, instance) = tokio::io::duplex(64);
        let piped = tokio::spawn(pipe(proxy_client, proxy_instance, Duration::from_secs(5)));
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
        let copied = pipe(proxy_client, proxy_instance, Duration::from_secs(30)).await;
        assert_eq!(copied.received + copied.sent, 0);
    }
}
