//! R-GW-1, no gap between the gateway's decision and the write: a replica
//! reaches accounts through a gRPC proxy that can hold one call after the
//! gateway decided it and before accounts sees it. A PAM of RM0001 adds a
//! member to a group of RM0001; while that call is held, the BAM widens the
//! group to RM0002. Released, the write does not land on the wider group:
//! accounts refuses it (the business moved past the revision the gateway
//! decided on), the gateway decides again on the fresher facts and denies.
//! When the change in between does not touch the decision, the write is
//! decided again and lands.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use ccp_proto::accounts::v1 as acc;
use ccp_proto::common::v1::Role;
use futures::future::BoxFuture;
use tokio::sync::oneshot;
use tonic::Code;
use tonic::server::NamedService;
use tonic::transport::Channel;
use tower::ServiceExt as _;

use crate::groups::get as group;
use crate::harness::{Suite, memory_context};
use crate::world::{self, ABC, Who, grants, req, rid, rm};

const ADD_MEMBERS: &str = "/ccp.accounts.v1.Accounts/AddEmployeeGroupMembers";

/// The next call of one path, held until released.
#[derive(Default)]
struct Hold {
    /// Set by [`HoldingProxy::arm`]: says "held", then waits for "go".
    next: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

/// Forwards every call of one accounts service (`FACTS` picks which) to the
/// real accounts, holding the armed call of [`ADD_MEMBERS`].
#[derive(Clone)]
struct Pass<const FACTS: bool> {
    upstream: Channel,
    hold: Arc<Hold>,
}

impl NamedService for Pass<false> {
    const NAME: &'static str = "ccp.accounts.v1.Accounts";
}

impl NamedService for Pass<true> {
    const NAME: &'static str = "ccp.accounts.v1.AccountFacts";
}

impl<const FACTS: bool> tower::Service<http::Request<tonic::body::Body>> for Pass<FACTS> {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let upstream = self.upstream.clone();
        let hold = self.hold.clone();
        Box::pin(async move {
            if request.uri().path() == ADD_MEMBERS {
                let armed = hold.next.lock().unwrap().take();
                if let Some((held, go)) = armed {
                    let _ = held.send(());
                    let _ = tokio::time::timeout(Duration::from_secs(10), go).await;
                }
            }
            match upstream.oneshot(request).await {
                Ok(response) => Ok(response),
                Err(err) => Ok(tonic::Status::unavailable(err.to_string()).into_http()),
            }
        })
    }
}

/// A gRPC proxy on 127.0.0.1 in front of accounts.
struct HoldingProxy {
    addr: SocketAddr,
    hold: Arc<Hold>,
    _stop: oneshot::Sender<()>,
}

impl HoldingProxy {
    async fn start(accounts: SocketAddr) -> Self {
        let upstream = Channel::from_shared(format!("http://{accounts}"))
            .unwrap()
            .connect_lazy();
        let hold = Arc::new(Hold::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_service(Pass::<false> {
                upstream: upstream.clone(),
                hold: hold.clone(),
            })
            .add_service(Pass::<true> {
                upstream,
                hold: hold.clone(),
            });
        tokio::spawn(server.serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            hold,
            _stop: stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Holds the next AddEmployeeGroupMembers: returns "held" and "go".
    fn arm(&self) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (held, on_held) = oneshot::channel();
        let (go, on_go) = oneshot::channel();
        *self.hold.next.lock().unwrap() = Some((held, on_go));
        (on_held, go)
    }
}

fn reader_of(program: u32) -> ccp_proto::common::v1::ProgramRole {
    grants(false, &[(&rm(ABC, program), Role::Reader)])
        .program_roles
        .remove(0)
}

async fn create_group(suite: &Suite, who: &Who, label: &str) -> String {
    suite
        .gw()
        .accounts()
        .create_employee_group(req(
            who,
            acc::CreateEmployeeGroupRequest {
                request_id: rid(),
                parent: format!("businesses/{ABC}"),
                group: Some(acc::EmployeeGroup {
                    display_name: label.to_owned(),
                    roles: vec![reader_of(1)],
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap()
        .name
}

/// Starts `who`'s AddEmployeeGroupMembers of `member` to `name` through `channel`.
fn add_member(
    channel: Channel,
    who: &Who,
    name: &str,
    member: &str,
) -> tokio::task::JoinHandle<Result<(), tonic::Status>> {
    let request = req(
        who,
        acc::AddEmployeeGroupMembersRequest {
            request_id: rid(),
            group: name.to_owned(),
            principals: vec![member.to_owned()],
        },
    );
    tokio::spawn(async move {
        ccp_proto::accounts::v1::accounts_client::AccountsClient::new(channel)
            .add_employee_group_members(request)
            .await
            .map(|_| ())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_gw_1_a_write_never_lands_on_facts_the_gateway_did_not_decide_on() {
    let mut suite = Suite::start(memory_context(), 1).await;
    let proxy = HoldingProxy::start(suite.accounts_addr).await;
    let held_replica = suite
        .add_gateway_with(|s| s.accounts_endpoint = proxy.url())
        .await;
    let g = suite.gw();
    let bam = world::person(&suite, g, "Alice Bam").await;
    world::register(g, &bam, ABC).await;
    let pam = world::person(&suite, g, "Paul Pam").await;
    let editor = world::person(&suite, g, "Eddie Editor").await;
    for (who, role) in [(&pam, Role::Pam), (&editor, Role::Editor)] {
        world::hire(g, &bam, who, ABC, grants(false, &[(&rm(ABC, 1), role)])).await;
    }
    let through_proxy = suite.gateways[held_replica].channel.clone();

    // The group covers RM0001 when the gateway decides; the BAM widens it to
    // RM0002 while the PAM's write is held between decision and accounts.
    let widened = create_group(&suite, &pam, "RM0001 desk").await;
    let (held, go) = proxy.arm();
    let call = add_member(through_proxy.clone(), &pam, &widened, &editor.principal);
    tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("the PAM's write was decided and reached the proxy")
        .unwrap();
    let etag = group(&suite, &bam, &widened).await.etag;
    suite
        .gw()
        .accounts()
        .update_employee_group(req(
            &bam,
            acc::UpdateEmployeeGroupRequest {
                request_id: rid(),
                group: Some(acc::EmployeeGroup {
                    name: widened.clone(),
                    roles: vec![reader_of(1), reader_of(2)],
                    etag,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["roles".to_owned()],
                }),
            },
        ))
        .await
        .expect("the BAM widens the group");
    go.send(()).unwrap();
    let refused = call
        .await
        .unwrap()
        .expect_err("decided again on the wider group");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        group(&suite, &bam, &widened).await.members.is_empty(),
        "the member was not added to the wider group"
    );

    // A change in between that the decision does not depend on: decided
    // again, the write lands.
    let kept = create_group(&suite, &pam, "RM0001 back office").await;
    let (held, go) = proxy.arm();
    let call = add_member(through_proxy, &pam, &kept, &editor.principal);
    tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("the PAM's write reached the proxy")
        .unwrap();
    create_group(&suite, &bam, "another desk").await;
    go.send(()).unwrap();
    call.await
        .unwrap()
        .expect("decided again on the same answer, the write lands");
    assert_eq!(
        group(&suite, &bam, &kept).await.members,
        vec![editor.principal.clone()]
    );
}
