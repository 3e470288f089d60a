//! Request and response bodies as the node and the gateway read and write
//! them: the JSON content type, reading within a limit, and JSON answers
//! that are never cached.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};

/// Whether the request declares a JSON body (`application/json`, any
/// parameters). Requiring it also keeps browsers from sending cross-site
/// requests without a CORS preflight.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        })
}

/// A JSON response with `status`, marked never to be cached (answers may
/// hold survivor data).
pub fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body.into(),
    )
        .into_response()
}

/// Why a request body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than the limit")]
    TooLarge,
    #[error("the request body could not be read")]
    Unreadable,
}

/// At most this much of a body over the limit is read and thrown away.
const DRAIN_MAX_BYTES: usize = 4 * 1024 * 1024;
/// For at most this long.
const DRAIN_MAX_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads a request body of at most `limit` bytes. A body over the limit is
/// not kept; what the client is still sending of it is read and thrown away
/// (at most [`DRAIN_MAX_BYTES`], for at most [`DRAIN_MAX_TIME`]) before the
/// refusal is answered. Without that, the server closes the connection with
/// the body still arriving, the client's kernel answers the unread data with
/// a reset, and the client often sees a broken connection instead of the
/// 413 and its code. Used by the node and the gateway.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    use axum::body::HttpBody as _;
    use http_body_util::BodyExt as _;
    let mut body = body;
    // A `Content-Length` over the limit is refused before anything is kept.
    let declared_too_large = body.size_hint().lower() > limit as u64;
    // Kept as received: a body in one frame (the usual case) is not copied.
    let mut kept: Vec<Bytes> = Vec::new();
    let mut kept_len = 0;
    if !declared_too_large {
        loop {
            match body.frame().await {
                None if kept.len() == 1 => return Ok(kept.swap_remove(0)),
                None => return Ok(Bytes::from(kept.concat())),
                Some(Err(_)) => return Err(BodyError::Unreadable),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        kept_len += data.len();
                        if kept_len > limit {
                            break;
                        }
                        kept.push(data);
                    }
                }
            }
        }
    }
    drop(kept);
    let drain = async {
        let mut drained = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                drained += data.len();
                if drained > DRAIN_MAX_BYTES {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_MAX_TIME, drain).await;
    Err(BodyError::TooLarge)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use futures::StreamExt as _;

    use super::*;

    type Frame = Result<Bytes, std::io::Error>;

    /// A body sent as frames of these sizes, with no declared length.
    fn frames(sizes: &[usize]) -> Body {
        let frames: Vec<Frame> = sizes
            .iter()
            .map(|n| Ok(Bytes::from(vec![b'x'; *n])))
            .collect();
        Body::from_stream(futures::stream::iter(frames))
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole_across_frames() {
        let read = read_body(frames(&[3, 4, 5]), 12).await;
        assert_eq!(read, Ok(Bytes::from(vec![b'x'; 12])));
    }

    #[tokio::test]
    async fn a_body_one_byte_over_the_limit_is_too_large() {
        assert_eq!(
            read_body(frames(&[3, 4, 6]), 12).await,
            Err(BodyError::TooLarge)
        );
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_too_large() {
        assert_eq!(
            read_body(Body::from(vec![0u8; 13]), 12).await,
            Err(BodyError::TooLarge)
        );
    }

    /// A body that breaks off (a client reset, a malformed chunk) is the
    /// client's bad input, not an oversized body.
    #[tokio::test]
    async fn a_body_whose_frames_fail_is_unreadable() {
        let frames: Vec<Frame> = vec![
            Ok(Bytes::from_static(b"{\"query\"")),
            Err(std::io::Error::other("connection reset")),
        ];
        assert_eq!(
            read_body(Body::from_stream(futures::stream::iter(frames)), 1024).await,
            Err(BodyError::Unreadable)
        );
    }

    const CHUNK: usize = 64 * 1024;
    static ZEROS: [u8; CHUNK] = [0; CHUNK];

    /// An oversized body that a client keeps sending, as fast as it is read
    /// (up to 64 MiB, then it stalls), and how much of it was read.
    fn endless(pulled: Arc<AtomicUsize>) -> Body {
        Body::from_stream(futures::stream::unfold((), move |()| {
            let pulled = pulled.clone();
            async move {
                if pulled.fetch_add(CHUNK, Ordering::SeqCst) >= 64 * 1024 * 1024 {
                    futures::future::pending::<()>().await;
                }
                Some((Frame::Ok(Bytes::from_static(&ZEROS)), ()))
            }
        }))
    }

    /// The drain reads at most its byte bound of what is still arriving,
    /// however fast the client sends.
    #[tokio::test(start_paused = true)]
    async fn draining_an_oversized_body_stops_at_its_byte_bound() {
        let pulled = Arc::new(AtomicUsize::new(0));
        let limit = 1024;
        let read = read_body(endless(pulled.clone()), limit).await;
        assert_eq!(read, Err(BodyError::TooLarge));
        let pulled = pulled.load(Ordering::SeqCst);
        assert!(
            pulled <= limit + DRAIN_MAX_BYTES + 2 * CHUNK,
            "read {pulled} bytes of an oversized body"
        );
    }

    /// A client that stalls in the middle of an oversized body is answered
    /// once the drain's time bound passes: nothing hangs.
    #[tokio::test(start_paused = true)]
    async fn a_stalled_oversized_body_is_answered_after_the_time_bound() {
        let frames = futures::stream::iter(vec![Frame::Ok(Bytes::from(vec![0u8; 2048]))])
            .chain(futures::stream::pending());
        let read = tokio::time::timeout(
            Duration::from_secs(60),
            read_body(Body::from_stream(frames), 1024),
        )
        .await;
        assert_eq!(read, Ok(Err(BodyError::TooLarge)), "answered, not hung");
    }
}
