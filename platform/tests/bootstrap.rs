//! The gRPC server bootstrap (`server::GrpcServer`): health and reflection for the added
//! services, graceful shutdown (NOT_SERVING during the drain delay, calls in flight finish), and
//! the `x-request-id` every response carries. Loopback only, port 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ccp_platform::config::ServerSettings;
use ccp_platform::server::GrpcServer;
use ccp_proto::identity::v1::identity_facts_client::IdentityFactsClient;
use ccp_proto::identity::v1::identity_facts_server::{IdentityFacts, IdentityFactsServer};
use ccp_proto::identity::v1::{
    CredentialFacts, GetCredentialRequest, GetProfilesRequest, GetProfilesResponse,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// Upper bound for any single wait.
const WAIT: Duration = Duration::from_secs(10);
/// How long the slow call takes; longer than the drain delay so it is still in flight when the
/// server stops accepting.
const SLOW_CALL: Duration = Duration::from_millis(800);
const FACTS: &str = "ccp.identity.v1.IdentityFacts";
const REQUEST_ID: &str = "x-request-id";

/// A test `IdentityFacts`: `get_profiles` is slow and reports when it starts; `get_credential`
/// answers at once and records the request id it saw.
#[derive(Clone)]
struct Facts {
    started: mpsc::UnboundedSender<()>,
    seen_request_ids: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl IdentityFacts for Facts {
    async fn get_profiles(
        &self,
        _request: tonic::Request<GetProfilesRequest>,
    ) -> Result<tonic::Response<GetProfilesResponse>, tonic::Status> {
        let _ = self.started.send(());
        tokio::time::sleep(SLOW_CALL).await;
        Ok(tonic::Response::new(GetProfilesResponse::default()))
    }

    async fn get_credential(
        &self,
        request: tonic::Request<GetCredentialRequest>,
    ) -> Result<tonic::Response<CredentialFacts>, tonic::Status> {
        let id = request
            .metadata()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        self.seen_request_ids.lock().unwrap().push(id);
        Ok(tonic::Response::new(CredentialFacts::default()))
    }
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    run: JoinHandle<anyhow::Result<()>>,
    started: mpsc::UnboundedReceiver<()>,
    seen_request_ids: Arc<Mutex<Vec<String>>>,
}

async fn start_server() -> Running {
    let settings = ServerSettings {
        listen: "127.0.0.1:0".to_owned(),
        drain_delay_ms: 300,
        ..Default::default()
    };
    let mut server = GrpcServer::bind(&settings).await.expect("bind");
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);
    let (started_tx, started) = mpsc::unbounded_channel();
    let seen_request_ids = Arc::new(Mutex::new(Vec::new()));
    server.add_service(IdentityFactsServer::new(Facts {
        started: started_tx,
        seen_request_ids: seen_request_ids.clone(),
    }));
    assert_eq!(server.service_names(), [FACTS]);
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(server.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        run,
        started,
        seen_request_ids,
    }
}

async fn connect(addr: SocketAddr) -> Channel {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).unwrap();
    timeout(WAIT, endpoint.connect())
        .await
        .expect("connect in time")
        .expect("connect")
}

async fn health_status(health: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    let response = timeout(
        WAIT,
        health.check(HealthCheckRequest {
            service: service.to_owned(),
        }),
    )
    .await
    .expect("health check in time")
    .expect("health check");
    response.into_inner().status()
}

/// Lists the services through reflection v1alpha, the version stock clients
/// such as grpcio-reflection speak.
async fn list_services_v1alpha(channel: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = timeout(
        WAIT,
        client.server_reflection_info(tokio_stream::iter(vec![request])),
    )
    .await
    .expect("reflection v1alpha in time")
    .expect("reflection v1alpha")
    .into_inner();
    let first = timeout(WAIT, responses.message())
        .await
        .expect("answer in time")
        .expect("answer")
        .expect("one answer");
    match first.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    }
}

async fn list_services(channel: Channel) -> Vec<String> {
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = timeout(
        WAIT,
        client.server_reflection_info(tokio_stream::iter(vec![request])),
    )
    .await
    .expect("reflection in time")
    .expect("reflection")
    .into_inner();
    let first = timeout(WAIT, responses.message())
        .await
        .expect("reflection answer in time")
        .expect("reflection answer")
        .expect("one reflection answer");
    match first.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    }
}

#[tokio::test]
async fn serves_health_and_reflection_then_drains_calls_in_flight_on_shutdown() {
    let mut running = start_server().await;
    let channel = connect(running.addr).await;

    // Health: the whole server and the added service are SERVING.
    let mut health = HealthClient::new(channel.clone());
    assert_eq!(health_status(&mut health, "").await, ServingStatus::Serving);
    assert_eq!(
        health_status(&mut health, FACTS).await,
        ServingStatus::Serving
    );

    // Reflection lists the added service and health.
    let services = list_services(channel.clone()).await;
    assert!(services.iter().any(|s| s == FACTS), "{services:?}");
    assert!(
        services.iter().any(|s| s == "grpc.health.v1.Health"),
        "{services:?}"
    );
    // The same through v1alpha (R-IN-1: every port answers both versions).
    let mut alpha = list_services_v1alpha(channel.clone()).await;
    let mut v1 = services.clone();
    alpha.sort();
    v1.sort();
    assert_eq!(alpha, v1);

    // A slow call is in flight when shutdown is triggered.
    let mut facts = IdentityFactsClient::new(channel.clone());
    let slow = tokio::spawn(async move { facts.get_profiles(GetProfilesRequest::default()).await });
    timeout(WAIT, running.started.recv())
        .await
        .expect("the slow call reached the handler in time")
        .expect("handler started");
    running.stop.take().unwrap().send(()).unwrap();

    // During the drain delay the server still answers, NOT_SERVING.
    let not_serving = timeout(WAIT, async {
        loop {
            if health_status(&mut health, "").await == ServingStatus::NotServing {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        not_serving.is_ok(),
        "health never turned NOT_SERVING during the drain delay"
    );
    assert_eq!(
        health_status(&mut health, FACTS).await,
        ServingStatus::NotServing
    );

    // The call in flight completes normally.
    let answer = timeout(WAIT, slow)
        .await
        .expect("slow call finished in time")
        .expect("slow call task");
    assert!(answer.is_ok(), "the in-flight call failed: {answer:?}");

    // Then the server stops cleanly.
    drop(health);
    drop(channel);
    let run = timeout(WAIT, running.run)
        .await
        .expect("server stopped in time")
        .expect("server task");
    assert!(run.is_ok(), "{run:?}");

    // And it no longer accepts connections.
    let endpoint = Endpoint::from_shared(format!("http://{}", running.addr)).unwrap();
    let reconnect = timeout(WAIT, endpoint.connect())
        .await
        .expect("connect attempt in time");
    assert!(
        reconnect.is_err(),
        "the stopped server still accepts connections"
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let mut running = start_server().await;
    let channel = connect(running.addr).await;
    let mut facts = IdentityFactsClient::new(channel);

    // None sent: one is generated, given to the handler and returned.
    let response = timeout(WAIT, facts.get_credential(GetCredentialRequest::default()))
        .await
        .expect("call in time")
        .expect("call");
    let generated = response
        .metadata()
        .get(REQUEST_ID)
        .expect("a generated x-request-id")
        .to_str()
        .unwrap()
        .to_owned();
    uuid::Uuid::parse_str(&generated).expect("the generated id is a UUID");

    // Another call gets another id.
    let response = timeout(WAIT, facts.get_credential(GetCredentialRequest::default()))
        .await
        .expect("call in time")
        .expect("call");
    let second = response
        .metadata()
        .get(REQUEST_ID)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(generated, second);

    // Sent by the caller: echoed unchanged.
    let mut request = tonic::Request::new(GetCredentialRequest::default());
    request
        .metadata_mut()
        .insert(REQUEST_ID, "caller-chosen-id-42".parse().unwrap());
    let response = timeout(WAIT, facts.get_credential(request))
        .await
        .expect("call in time")
        .expect("call");
    assert_eq!(
        response.metadata().get(REQUEST_ID).unwrap(),
        "caller-chosen-id-42"
    );

    // Health answers carry one too (the layer wraps every route).
    let mut health = HealthClient::new(connect(running.addr).await);
    let response = timeout(
        WAIT,
        health.check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await
    .expect("health in time")
    .expect("health");
    assert!(response.metadata().get(REQUEST_ID).is_some());

    let seen = running.seen_request_ids.lock().unwrap().clone();
    assert_eq!(seen, [generated, second, "caller-chosen-id-42".to_owned()]);

    running.stop.take().unwrap().send(()).unwrap();
    drop(facts);
    drop(health);
    let run = timeout(WAIT, running.run)
        .await
        .expect("server stopped in time")
        .expect("server task");
    assert!(run.is_ok(), "{run:?}");
}
