//! The outcome of every call, seen from outside the handlers: the status a
//! caller gets for what never reached a handler, and one log line per failed
//! call at the level its code deserves.
//!
//! - A request whose metadata is larger than [`MAX_METADATA_BYTES`] (a 100 KB
//!   `authorization` header) is refused RESOURCE_EXHAUSTED for that call
//!   only; the connection and the other calls on it carry on (the HTTP/2
//!   header limit is set far above this, so hyper never resets the
//!   connection first).
//! - A body that is not a valid protobuf message answers INVALID_ARGUMENT
//!   (tonic says INTERNAL with the decoder's text), and one over the size
//!   limit answers RESOURCE_EXHAUSTED (tonic says OUT_OF_RANGE), as gRPC's
//!   conventions ask.
//! - Client errors (bad input, not found, denied…) log at INFO, faults of a
//!   dependency (UNAVAILABLE, DEADLINE_EXCEEDED) at WARN, and only faults of
//!   our own (INTERNAL, UNKNOWN, DATA_LOSS, UNIMPLEMENTED) at ERROR, each
//!   with the method and the request id.
//! - Every call is measured (`rpc_server_duration_seconds`, see
//!   [`crate::metrics`]) with the code its caller gets, up to its response
//!   headers (a unary call's whole work; a stream's start).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::body::Body;
use tonic::{Code, Status};

use crate::auth::REQUEST_ID_HEADER;
use crate::metrics::{RpcInstruments, Side};

/// The most metadata (header names and values) one call may carry.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// The HTTP/2 header list size the server accepts before it would reset the
/// connection; far above [`MAX_METADATA_BYTES`], so an oversized call is
/// refused alone.
pub const HTTP2_MAX_HEADER_LIST_BYTES: u32 = 1024 * 1024;

/// The tower layer of [`Outcome`].
#[derive(Debug, Clone, Copy, Default)]
pub struct OutcomeLayer;

impl<S> tower::Layer<S> for OutcomeLayer {
    type Service = Outcome<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Outcome { inner }
    }
}

/// Refuses oversized metadata, maps decoder statuses to gRPC's codes and
/// logs failed calls by their code.
#[derive(Debug, Clone)]
pub struct Outcome<S> {
    inner: S,
}

/// What a call's outcome is logged and measured with: the request's own
/// header values kept (reference-counted bytes), no text built unless the
/// call fails.
struct CallInfo {
    uri: http::Uri,
    request_id: Option<http::HeaderValue>,
}

impl CallInfo {
    fn method(&self) -> &str {
        self.uri.path()
    }

    fn request_id(&self) -> String {
        self.request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(128)
            .collect()
    }
}

impl<S, B> tower::Service<http::Request<B>> for Outcome<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let info = CallInfo {
            uri: request.uri().clone(),
            request_id: request.headers().get(REQUEST_ID_HEADER).cloned(),
        };
        let metadata: usize = request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if metadata > MAX_METADATA_BYTES {
            let status = Status::resource_exhausted(format!(
                "the call's metadata is {metadata} bytes; at most {MAX_METADATA_BYTES} are accepted"
            ));
            log(&info, &status);
            measure(&info, status.code(), started);
            return Box::pin(std::future::ready(Ok(status.into_http())));
        }
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = match future.await {
                Ok(response) => response,
                Err(err) => {
                    measure(&info, Code::Unknown, started);
                    return Err(err);
                }
            };
            let mut code = Code::Ok;
            if let Some(status) = Status::from_header_map(response.headers()) {
                let status = conventional(status);
                code = status.code();
                if status.code() != Code::Ok {
                    log(&info, &status);
                    if status.add_header(response.headers_mut()).is_err() {
                        tracing::debug!("cannot rewrite a status header");
                    }
                }
            }
            measure(&info, code, started);
            Ok(response)
        })
    }
}

/// Returns the status gRPC's conventions give to what tonic's codec reports.
fn conventional(status: Status) -> Status {
    let message = status.message();
    match status.code() {
        Code::Internal if message.starts_with("failed to decode") => {
            Status::invalid_argument("the request is not a valid protobuf message of this method")
        }
        Code::OutOfRange if message.contains("message length too large") => {
            Status::resource_exhausted(format!("the request is too large: {message}"))
        }
        _ => status,
    }
}

fn measure(info: &CallInfo, code: Code, started: Instant) {
    RpcInstruments::of(Side::Server).record(info.method(), code as i32, started.elapsed());
}

fn log(info: &CallInfo, status: &Status) {
    let (method, request_id, code, message) = (
        info.method(),
        info.request_id(),
        status.code(),
        status.message(),
    );
    match code {
        Code::Internal | Code::Unknown | Code::DataLoss | Code::Unimplemented => {
            tracing::error!(method, request_id, ?code, message, "call failed");
        }
        Code::Unavailable | Code::DeadlineExceeded => {
            tracing::warn!(method, request_id, ?code, message, "call failed");
        }
        _ => tracing::info!(method, request_id, ?code, message, "call refused"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_statuses_get_the_conventional_codes() {
        let decode = conventional(Status::internal(
            "failed to decode Protobuf message: invalid wire type",
        ));
        assert_eq!(decode.code(), Code::InvalidArgument);
        assert!(!decode.message().contains("wire type"));
        let large = conventional(Status::out_of_range(
            "Error, decoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes",
        ));
        assert_eq!(large.code(), Code::ResourceExhausted);
        let ours = conventional(Status::internal("internal error"));
        assert_eq!(ours.code(), Code::Internal);
    }
}
