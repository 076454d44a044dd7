//! Request bodies: refusing a declared length over a route's limit before reading anything, and
//! the body-read timeout that every route shares.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::http::code::ApiCode;
use crate::http::error::{error_response, json_error};
use crate::state::AppState;

/// Why a body could not be had.
#[derive(Debug)]
pub enum BodyRefusal {
    /// Over the route's limit, declared or counted.
    TooLarge,
    /// The client broke off (or the body-read timeout ended it).
    Unreadable,
}

/// The `Content-Length` the client declared, if any.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// The whole body within `limit` bytes. A declared length over the limit is refused at once,
/// without waiting for a body that may never come.
pub async fn read_within(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, BodyRefusal> {
    if declared_length(headers).is_some_and(|len| len > limit as u64) {
        return Err(BodyRefusal::TooLarge);
    }
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(cause) = source {
            if cause.is::<http_body_util::LengthLimitError>() {
                return BodyRefusal::TooLarge;
            }
            source = cause.source();
        }
        tracing::debug!(error = %err, "reading a request body failed");
        BodyRefusal::Unreadable
    })
}

pub fn payload_too_large() -> Response {
    json_error(StatusCode::PAYLOAD_TOO_LARGE)
}

/// A body that has not fully arrived within the configured time after the request head ends in
/// an error for whoever reads it, and the request is answered 408 (whatever the handler made of
/// the broken body) and its connection closed.
pub async fn body_read_deadline(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let timed_out = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            due: Instant::now() + state.config.body_read_timeout,
            deadline: None,
            timed_out: timed_out.clone(),
        })
    });
    let response = next.run(request).await;
    if !timed_out.load(Ordering::Relaxed) {
        return response;
    }
    tracing::info!("request body not received in time");
    (
        [(header::CONNECTION, HeaderValue::from_static("close"))],
        error_response(
            StatusCode::REQUEST_TIMEOUT,
            ApiCode::RequestTimeout,
            "Request body timeout",
        ),
    )
        .into_response()
}

struct DeadlineBody {
    inner: Body,
    due: Instant,
    /// Armed the first time a read has to wait: bodies that are never read (most GETs) or that
    /// are already there cost no timer.
    deadline: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("request body not received in time")]
struct BodyTimeout;

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let due = self.due;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.timed_out.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(axum::Error::new(BodyTimeout))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
