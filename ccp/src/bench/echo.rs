//! The baseline: a bare tonic server answering `Authorization.Check` at once
//! — plain `tonic::transport::Server::builder()` with none of our layers
//! (no request ids, trace context, outcome logging, load shedding, health),
//! the same request and response messages, TCP_NODELAY on as the gateway's
//! sockets have it — so the load generator measures everything the gateway
//! adds, its server stack included.

use ccp_proto::gateway::v1::authorization_server::{Authorization, AuthorizationServer};
use ccp_proto::gateway::v1::{AllowReason, CheckRequest, CheckResponse, Decision};
use tonic::transport::server::TcpIncoming;
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
    /// Starts the bare echo on 127.0.0.1:0.
    pub async fn start() -> anyhow::Result<Self> {
        let incoming = TcpIncoming::bind(([127, 0, 0, 1], 0).into())?.with_nodelay(Some(true));
        let addr = incoming.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(AuthorizationServer::new(Echo))
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stopped.await;
                })
                .await?;
            anyhow::Ok(())
        });
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

/// Serves the bare echo in this process until Ctrl-C or SIGTERM (`ccp bench
/// bare-echo`, the baseline of the out-of-process mode): prints
/// `listening on ADDR` first.
pub async fn serve_until_stopped() -> anyhow::Result<()> {
    let incoming = TcpIncoming::bind(([127, 0, 0, 1], 0).into())?.with_nodelay(Some(true));
    println!("listening on {}", incoming.local_addr()?);
    tonic::transport::Server::builder()
        .add_service(AuthorizationServer::new(Echo))
        .serve_with_incoming_shutdown(incoming, ccp_platform::server::shutdown_signal())
        .await?;
    Ok(())
}
