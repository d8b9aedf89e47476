//! What never reaches a handler still gets gRPC's conventional answer, for
//! that call only (R-IN-1): a body that is not a protobuf message of the
//! method is INVALID_ARGUMENT, a message over the size limit and oversized
//! metadata are RESOURCE_EXHAUSTED, and the connection keeps serving the
//! other calls. Loopback only, port 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::{Buf as _, BufMut as _};
use ccp_platform::config::ServerSettings;
use ccp_platform::server::GrpcServer;
use ccp_proto::identity::v1::identity_facts_client::IdentityFactsClient;
use ccp_proto::identity::v1::identity_facts_server::{IdentityFacts, IdentityFactsServer};
use ccp_proto::identity::v1::{
    CredentialFacts, GetCredentialRequest, GetProfilesRequest, GetProfilesResponse,
};
use tokio::time::timeout;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};

const WAIT: Duration = Duration::from_secs(10);
const LIMIT: usize = 1024;

struct Facts;

#[tonic::async_trait]
impl IdentityFacts for Facts {
    /// Answers `fail:<code>` in the first id with that gRPC code.
    async fn get_profiles(
        &self,
        request: tonic::Request<GetProfilesRequest>,
    ) -> Result<tonic::Response<GetProfilesResponse>, tonic::Status> {
        let first = request.get_ref().profile_ids.first();
        if let Some(code) = first.and_then(|id| id.strip_prefix("fail:")) {
            let code = Code::from_i32(code.parse().expect("a code number"));
            return Err(tonic::Status::new(code, "as asked"));
        }
        Ok(tonic::Response::new(GetProfilesResponse::default()))
    }

    async fn get_credential(
        &self,
        _request: tonic::Request<GetCredentialRequest>,
    ) -> Result<tonic::Response<CredentialFacts>, tonic::Status> {
        Ok(tonic::Response::new(CredentialFacts::default()))
    }
}

/// A codec that sends and receives raw bytes, to put any body on the wire.
#[derive(Debug, Clone, Default)]
struct RawCodec;

#[derive(Debug, Clone, Default)]
struct Raw;

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

async fn raw_call(channel: Channel, body: Vec<u8>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static("/ccp.identity.v1.IdentityFacts/GetProfiles");
    match grpc.unary(tonic::Request::new(body), path, RawCodec).await {
        Ok(_) => tonic::Status::ok(""),
        Err(status) => status,
    }
}

async fn start() -> Channel {
    let settings = ServerSettings {
        listen: "127.0.0.1:0".to_owned(),
        ..Default::default()
    };
    let mut server = GrpcServer::bind(&settings).await.expect("bind");
    let addr = server.local_addr();
    server.add_service(IdentityFactsServer::new(Facts).max_decoding_message_size(LIMIT));
    tokio::spawn(server.run_until_stopped(std::future::pending()));
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("endpoint");
    timeout(WAIT, endpoint.connect())
        .await
        .expect("connect in time")
        .expect("connect")
}

async fn works(channel: Channel) {
    IdentityFactsClient::new(channel)
        .get_profiles(GetProfilesRequest::default())
        .await
        .expect("an ordinary call on the same connection succeeds");
}

#[tokio::test]
async fn r_in_1_a_body_that_is_not_a_protobuf_message_is_invalid_argument() {
    let channel = start().await;
    // Field 1 (profile_ids) as a length-delimited value whose length runs
    // past the end of the message.
    let status = raw_call(channel.clone(), vec![0x0a, 0x7f, b'x']).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(!status.message().contains("wire"), "{status:?}");
    works(channel).await;
}

#[tokio::test]
async fn r_in_1_a_message_over_the_size_limit_is_resource_exhausted() {
    let channel = start().await;
    let request = GetProfilesRequest {
        profile_ids: vec!["x".repeat(100); 20],
    };
    let status = IdentityFactsClient::new(channel.clone())
        .get_profiles(request)
        .await
        .expect_err("over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    works(channel).await;
}

#[tokio::test]
async fn r_in_1_oversized_metadata_is_refused_for_that_call_only() {
    let channel = start().await;
    let mut request = tonic::Request::new(GetProfilesRequest::default());
    let huge = format!("Bearer {}", "a".repeat(100 * 1024));
    request
        .metadata_mut()
        .insert("authorization", huge.parse().expect("ascii"));
    let status = IdentityFactsClient::new(channel.clone())
        .get_profiles(request)
        .await
        .expect_err("oversized metadata");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    works(channel).await;
}

/// One event the call-outcome layer logged: its level and fields.
#[derive(Debug, Clone)]
struct Logged {
    level: tracing::Level,
    fields: std::collections::BTreeMap<String, String>,
}

/// A tracing layer keeping every event of the `ccp_platform` crate.
#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<Logged>>>);

struct Fields<'a>(&'a mut std::collections::BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if !event.metadata().target().starts_with("ccp_platform") {
            return;
        }
        let mut fields = std::collections::BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().expect("capture").push(Logged {
            level: *event.metadata().level(),
            fields,
        });
    }
}

/// Client errors are the caller's: they log at INFO; a dependency's fault at
/// WARN; only a fault of our own at ERROR — each once, with the method and
/// the request id.
#[tokio::test]
async fn failed_calls_log_client_errors_at_info_and_only_our_own_faults_at_error() {
    use tracing::Level;
    use tracing_subscriber::layer::SubscriberExt as _;
    // Global, not per thread: a callsite first hit by another test's thread
    // would otherwise stay quiet for this one. Events are told apart by request id.
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    let capture = CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            tracing::subscriber::set_global_default(
                tracing_subscriber::registry().with(capture.clone()),
            )
            .expect("the only global subscriber of this test binary");
            capture
        })
        .clone();
    let channel = start().await;
    let cases = [
        (Code::InvalidArgument, Level::INFO),
        (Code::NotFound, Level::INFO),
        (Code::AlreadyExists, Level::INFO),
        (Code::PermissionDenied, Level::INFO),
        (Code::Unauthenticated, Level::INFO),
        (Code::FailedPrecondition, Level::INFO),
        (Code::Aborted, Level::INFO),
        (Code::ResourceExhausted, Level::INFO),
        (Code::OutOfRange, Level::INFO),
        (Code::Cancelled, Level::INFO),
        (Code::Unavailable, Level::WARN),
        (Code::DeadlineExceeded, Level::WARN),
        (Code::Internal, Level::ERROR),
        (Code::Unknown, Level::ERROR),
        (Code::DataLoss, Level::ERROR),
        (Code::Unimplemented, Level::ERROR),
    ];
    for (i, (code, level)) in cases.into_iter().enumerate() {
        let request_id = format!("log-levels-{i}");
        let mut request = tonic::Request::new(GetProfilesRequest {
            profile_ids: vec![format!("fail:{}", code as i32)],
        });
        request
            .metadata_mut()
            .insert("x-request-id", request_id.parse().expect("ascii"));
        let status = IdentityFactsClient::new(channel.clone())
            .get_profiles(request)
            .await
            .expect_err("fails as asked");
        assert_eq!(status.code(), code);
        let logged: Vec<Logged> = capture
            .0
            .lock()
            .expect("capture")
            .iter()
            .filter(|l| l.fields.get("request_id") == Some(&request_id))
            .cloned()
            .collect();
        assert_eq!(logged.len(), 1, "{code:?} is logged once: {logged:?}");
        assert_eq!(logged[0].level, level, "{code:?}: {logged:?}");
        assert_eq!(
            logged[0].fields.get("method").map(String::as_str),
            Some("/ccp.identity.v1.IdentityFacts/GetProfiles")
        );
        assert_eq!(
            logged[0].fields.get("code").map(String::as_str),
            Some(format!("{code:?}").as_str())
        );
    }
    // A successful call logs no failure.
    works(channel).await;
    let errors = capture
        .0
        .lock()
        .expect("capture")
        .iter()
        .filter(|l| {
            l.level == Level::ERROR
                && l.fields
                    .get("request_id")
                    .is_some_and(|id| id.starts_with("log-levels-"))
        })
        .count();
    assert_eq!(errors, 4, "only the four faults of our own log at ERROR");
}
