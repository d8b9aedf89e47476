//! The baseline: a bare tonic server answering `Authorization.Check` at once
//! with ALLOW — same tonic, same server bootstrap and tower stack as the
//! gateway, same request and response messages — so the load generator
//! measures everything the gateway adds and nothing else.

use ccp_platform::config::ServerSettings;
use ccp_platform::server::GrpcServer;
use ccp_proto::gateway::v1::authorization_server::{Authorization, AuthorizationServer};
use ccp_proto::gateway::v1::{AllowReason, CheckRequest, CheckResponse, Decision};
use tonic::{Request, Response, Status};

/// The echo service.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

#[tonic::async_trait]
impl Authorization for Echo {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        // Touch the message so the work matches a real handler's decode.
        let allow = request.get_ref().item.is_some();
        Ok(Response::new(CheckResponse {
            decision: if allow {
                Decision::Allow
            } else {
                Decision::Deny
            } as i32,
            allow_reason: AllowReason::OwnRole as i32,
            deny_reason: 0,
        }))
    }
}

/// A running echo server.
#[derive(Debug)]
pub struct EchoServer {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl EchoServer {
    /// Starts the echo on 127.0.0.1:0 with the given server settings.
    pub async fn start(settings: &ServerSettings) -> anyhow::Result<Self> {
        let settings = ServerSettings {
            listen: "127.0.0.1:0".to_owned(),
            ..settings.clone()
        };
        let mut server = GrpcServer::bind(&settings).await?;
        server.add_service(AuthorizationServer::new(Echo));
        let addr = server.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(server.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// Stops the echo and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await?
    }
}
