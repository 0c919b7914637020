//! Request bodies: refused before a byte is read when their declared length is over the limit
//! (so `Expect: 100-continue` gets no `100 Continue`), and read within one total deadline from
//! the end of the headers (`http.readtimeout`), however slowly the bytes trickle in.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

use super::text_error;

/// The body limits of the API.
#[derive(Debug, Clone, Copy)]
pub(super) struct BodyLimits {
    /// Largest body in bytes.
    pub max_bytes: usize,
    /// Time to receive the whole body; `None` = no limit.
    pub deadline: Option<Duration>,
}

/// The message of a 413 reply.
pub(super) fn too_large(max_bytes: usize) -> String {
    format!("request body is larger than the limit of {max_bytes} bytes")
}

/// Middleware: 413 at once for a declared length over the limit, else the body with a deadline.
pub(super) async fn limit_body(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return text_error(StatusCode::PAYLOAD_TOO_LARGE, &too_large(limits.max_bytes));
    }
    let Some(deadline) = limits.deadline else {
        return next.run(request).await;
    };
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            expires: Box::pin(tokio::time::sleep(deadline)),
        })
    });
    next.run(request).await
}

/// The body did not arrive within the read timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the read timeout")]
pub(crate) struct BodyTimedOut;

/// A body that fails with [`BodyTimedOut`] once its deadline passes.
struct DeadlineBody {
    inner: Body,
    expires: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.expires.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
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
