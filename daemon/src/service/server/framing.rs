//! Framing on the control socket: JSON lines read with a cap (a longer line is read to its
//! end, discarded and answered with an error; the connection goes on), responses written as
//! JSON lines, progress lines (every 250 ms by default) while work runs, and the binary frames of a stream.

use super::transport::{RecvHalf, SendHalf};
use sharekeep::protocol::{Response, MAX_LINE};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One line read with a cap.
pub(crate) enum Line {
    Text(String),
    TooLong,
}

/// Reads one line of at most `MAX_LINE` bytes; a longer one is read to its end, discarded,
/// and reported as [`Line::TooLong`]. `None` at the end of the stream.
pub(crate) async fn read_line(r: &mut BufReader<RecvHalf>) -> std::io::Result<Option<Line>> {
    let mut buf: Vec<u8> = Vec::new();
    let mut too_long = false;
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok((!buf.is_empty() || too_long).then(|| finish(buf, too_long)));
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if !too_long {
            if buf.len() + chunk.len() > MAX_LINE {
                too_long = true;
                buf = Vec::new();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(available.len());
        r.consume(used);
        if done.is_some() {
            return Ok(Some(finish(buf, too_long)));
        }
    }
}

fn finish(buf: Vec<u8>, too_long: bool) -> Line {
    if too_long {
        Line::TooLong
    } else {
        Line::Text(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// Writes one response line.
pub(crate) async fn send(w: &mut SendHalf, r: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_string(r).expect("responses serialize");
    line.push('\n');
    w.write_all(line.as_bytes()).await
}

/// Sends a progress line every `every` (`progress_interval_ms`, 250 ms by default) until
/// `work` is done; returns its result.
pub(crate) async fn with_progress<T>(
    w: &mut SendHalf,
    every: std::time::Duration,
    live: &sharekeep::LiveProgress,
    what: &str,
    work: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(work);
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            r = &mut work => return r,
            _ = tick.tick() => {
                // A client that went away does not stop the work.
                let _ = send(w, &Response::Progress { message: live.describe(what) }).await;
            }
        }
    }
}

/// Streams frames produced on the blocking pool by `produce` (which gets a sink) to the
/// socket. At most 8 frames wait in between (memory stays flat whatever the size); a client
/// that goes away makes the sink fail, which stops the producer.
pub(crate) async fn stream_frames<T: Send + 'static>(
    w: &mut SendHalf,
    produce: impl FnOnce(&mut sharekeep::FrameSink<'_>) -> T + Send + 'static,
) -> std::io::Result<T> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u8, Vec<u8>)>(8);
    let task = tokio::task::spawn_blocking(move || {
        let mut sink = |tag: u8, payload: Vec<u8>| -> std::io::Result<()> {
            tx.blocking_send((tag, payload))
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))
        };
        produce(&mut sink)
    });
    let mut failed = None;
    while let Some((tag, payload)) = rx.recv().await {
        let header = sharekeep::protocol::frame::header(tag, payload.len());
        let r = async {
            w.write_all(&header).await?;
            w.write_all(&payload).await
        }
        .await;
        if let Err(e) = r {
            failed = Some(e);
            break;
        }
    }
    drop(rx);
    let out = task.await.map_err(std::io::Error::other)?;
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
