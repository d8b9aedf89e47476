//! Faults a client can retry (R-GW-5): a forwarded call whose upstream
//! connection dies under it answers UNAVAILABLE, never UNKNOWN, and an
//! idempotent one (a read, or a write carrying a `request_id`) is sent once
//! more on a fresh connection before the gateway answers. A second gateway
//! replica reaches the real accounts service through a TCP proxy that can cut
//! every connection it holds at their next byte — what a killed or restarted
//! upstream does to the calls in flight; connections made after the cut pass.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ccp_proto::accounts::v1 as acc;
use ccp_proto::common::v1::Role;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tonic::Code;

use crate::harness::{Replica, Suite, memory_context};
use crate::world::{self, ABC, Who, grants, req, rid, rm};

/// Connections one proxy accepts at most (bounds its accept loop).
const MAX_CONNECTIONS: usize = 64;

/// A TCP proxy on 127.0.0.1 in front of `upstream`.
struct CuttingProxy {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    /// Connections numbered below this are closed at their next byte from the client.
    cut_below: Arc<AtomicUsize>,
    /// Connections closed that way.
    cuts: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl CuttingProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let cut_below = Arc::new(AtomicUsize::new(0));
        let cuts = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (accepted, cut_below, cuts) = (accepted.clone(), cut_below.clone(), cuts.clone());
            async move {
                // Dropped with the task: every connection's pipe ends with it.
                let mut pipes = JoinSet::new();
                for id in 0..MAX_CONNECTIONS {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    pipes.spawn(pipe(id, client, upstream, cut_below.clone(), cuts.clone()));
                }
                while pipes.join_next().await.is_some() {}
            }
        });
        Self {
            addr,
            accepted,
            cut_below,
            cuts,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every connection open now is closed at its next byte from the client.
    fn cut_open_connections(&self) {
        self.cut_below
            .store(self.accepted.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies bytes both ways until either side closes, or until the connection
/// is cut: then both sockets are dropped without passing the byte on.
async fn pipe(
    id: usize,
    client: TcpStream,
    upstream: SocketAddr,
    cut_below: Arc<AtomicUsize>,
    cuts: Arc<AtomicUsize>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut server_rd, mut server_wr) = server.into_split();
    let mut up = vec![0u8; 16 * 1024];
    let mut down = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = client_rd.read(&mut up) => {
                let n = match read { Ok(0) | Err(_) => return, Ok(n) => n };
                if id < cut_below.load(Ordering::SeqCst) {
                    cuts.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                if server_wr.write_all(&up[..n]).await.is_err() {
                    return;
                }
            }
            read = server_rd.read(&mut down) => {
                let n = match read { Ok(0) | Err(_) => return, Ok(n) => n };
                if client_wr.write_all(&down[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn get_business(gw: &Replica, who: &Who) -> Result<acc::Business, tonic::Status> {
    gw.accounts()
        .get_business(req(
            who,
            acc::GetBusinessRequest {
                name: format!("businesses/{ABC}"),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn set_reader(
    gw: &Replica,
    bam: &Who,
    member: &str,
    request_id: String,
    etag: String,
) -> Result<acc::SetMemberRolesResponse, tonic::Status> {
    gw.accounts()
        .set_member_roles(req(
            bam,
            acc::SetMemberRolesRequest {
                request_id,
                name: format!("businesses/{ABC}/members/{member}"),
                grants: Some(grants(false, &[(&rm(ABC, 1), Role::Reader)])),
                etag,
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// True when the cut hit the gateway's facts connection, not the forwarded call's.
fn facts_cut<T>(answer: &Result<T, tonic::Status>) -> bool {
    answer
        .as_ref()
        .is_err_and(|e| e.message().contains("authorization facts"))
}

async fn member(gw: &Replica, bam: &Who, member: &str) -> acc::Member {
    gw.accounts()
        .get_member(req(
            bam,
            acc::GetMemberRequest {
                name: format!("businesses/{ABC}/members/{member}"),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_gw_5_a_dropped_upstream_connection_is_unavailable_and_idempotent_calls_are_retried_once()
{
    let mut suite = Suite::start(memory_context(), 1).await;
    let bam = world::person(&suite, suite.gw(), "Alice Bam").await;
    world::register(suite.gw(), &bam, ABC).await;
    let editor = world::person(&suite, suite.gw(), "Eddie Editor").await;
    world::hire(
        suite.gw(),
        &bam,
        &editor,
        ABC,
        grants(false, &[(&rm(ABC, 1), Role::Editor)]),
    )
    .await;
    let proxy = CuttingProxy::start(suite.accounts_addr).await;
    let proxied = suite
        .add_gateway_with(|s| s.accounts_endpoint = proxy.url())
        .await;
    let g = &suite.gateways[proxied];

    // Warm: the BAM's facts are cached, the forwarding connection is open.
    get_business(g, &bam).await.expect("through the proxy");
    let etag = member(suite.gw(), &bam, &editor.principal).await.etag;

    // Each step cuts the open connections, then calls. Which connection carries
    // the call's first byte is the gateway's business (the facts channel goes
    // through the proxy too), so a step is repeated — at most ROUNDS times —
    // until a round in which the forwarded call's own connection was cut.
    const ROUNDS: usize = 5;

    // A write without a request_id is never sent twice: its connection dies
    // under it and the answer is UNAVAILABLE (tonic alone says UNKNOWN).
    let mut proven = false;
    for _ in 0..ROUNDS {
        let _ = get_business(g, &bam).await;
        proxy.cut_open_connections();
        let cuts = proxy.cuts();
        let answer = set_reader(g, &bam, &editor.principal, String::new(), etag.clone()).await;
        if proxy.cuts() == cuts {
            continue;
        }
        let err = answer.expect_err("the connection was cut and the write not resent");
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        if err.message().contains("accounts is unavailable") {
            proven = true;
            break;
        }
    }
    assert!(proven, "no round cut the forwarded write's connection");

    // A read whose connection dies under it is sent again on a fresh
    // connection, within its deadline, and succeeds.
    let mut proven = false;
    for _ in 0..ROUNDS {
        let _ = get_business(g, &bam).await;
        proxy.cut_open_connections();
        let (cuts, accepted) = (proxy.cuts(), proxy.accepted());
        let answer = get_business(g, &bam).await;
        if proxy.cuts() == cuts || facts_cut(&answer) {
            continue;
        }
        let business = answer.expect("retried on a fresh connection");
        assert_eq!(business.bn9, ABC);
        assert!(proxy.accepted() > accepted, "the retry connected anew");
        proven = true;
        break;
    }
    assert!(proven, "no round cut the forwarded read's connection");

    // A write with a request_id is retried too, and applied.
    let mut proven = false;
    for _ in 0..ROUNDS {
        let _ = get_business(g, &bam).await;
        let etag = member(suite.gw(), &bam, &editor.principal).await.etag;
        proxy.cut_open_connections();
        let cuts = proxy.cuts();
        let answer = set_reader(g, &bam, &editor.principal, rid(), etag).await;
        if proxy.cuts() == cuts || facts_cut(&answer) {
            continue;
        }
        answer.expect("retried on a fresh connection");
        proven = true;
        break;
    }
    assert!(proven, "no round cut the forwarded write's connection");
    let after = member(suite.gw(), &bam, &editor.principal).await;
    assert_eq!(
        after.direct_roles,
        vec![ccp_proto::common::v1::ProgramRole {
            program_account: rm(ABC, 1),
            role: Role::Reader as i32,
        }]
    );

    // Accounts gone for good: the retry fails too, and the answer is still
    // UNAVAILABLE, well within the caller's deadline. (The write's event may
    // have evicted the BAM's facts, whose connection was cut too: the first
    // fetch on it fails, the next one connects anew.)
    let mut warm = Err(tonic::Status::unknown("not tried"));
    for _ in 0..3 {
        warm = get_business(g, &bam).await;
        if warm.is_ok() {
            break;
        }
    }
    warm.expect("the facts are fetched again");
    suite.accounts.stop().await;
    let started = Instant::now();
    let err = get_business(g, &bam)
        .await
        .expect_err("accounts is stopped");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
