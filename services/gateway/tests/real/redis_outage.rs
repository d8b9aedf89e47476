//! R-EV-1: identity, accounts and delegation each start while their Redis is
//! unreachable (`RedisAtStart::Optional`, as `ccp serve` starts them), report
//! themselves SERVING and the bus (`ccp.bus`) NOT_SERVING, accept a write, and
//! publish its event once a redis-server comes up on that port. The calls go
//! straight to each service (the gateway needs Redis to start); the events are
//! read back with XRANGE on the prefixed stream keys.

use std::time::Duration;

use ccp_platform::config::{ClockMode, Environment};
use ccp_platform::context::{CommonSettings, RedisAtStart, ServiceContext};
use ccp_platform::store::OutboxRelay;
use ccp_platform::testing::{redis_server_on_spare_port, unique_prefix};
use ccp_proto::accounts::v1 as acc;
use ccp_proto::accounts::v1::accounts_client::AccountsClient;
use ccp_proto::common::v1::{DomainEvent, EventType};
use ccp_proto::delegation::v1 as del;
use ccp_proto::delegation::v1::delegation_client::DelegationClient;
use ccp_proto::identity::v1 as idn;
use ccp_proto::identity::v1::identity_client::IdentityClient;
use prost::Message as _;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::{Suite, registry};
use crate::world::{ABC, rid, rm};

const WAIT: Duration = Duration::from_secs(20);

async fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A request straight to a service: the internal token a gateway would add,
/// and the caller's access token when there is one.
fn direct<T>(suite: &Suite, bearer: Option<&str>, message: T) -> tonic::Request<T> {
    let mut r = suite.internal(message);
    if let Some(token) = bearer {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    r.set_timeout(Duration::from_secs(10));
    r
}

async fn status(addr: std::net::SocketAddr, name: &str) -> ServingStatus {
    HealthClient::new(channel(addr).await)
        .check(HealthCheckRequest {
            service: name.to_owned(),
        })
        .await
        .map_or(ServingStatus::Unknown, |r| r.into_inner().status())
}

/// Waits (bounded) until `addr` reports `name` as `want`.
async fn wait_status(addr: std::net::SocketAddr, name: &str, want: ServingStatus) {
    tokio::time::timeout(WAIT, async {
        while status(addr, name).await != want {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{addr} did not report {name} {want:?} in time"));
}

/// The events on `<prefix><stream>`, read with XRANGE.
async fn stream_events(
    redis: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> Vec<DomainEvent> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(redis)
        .await
        .unwrap();
    reply
        .ids
        .iter()
        .map(|entry| {
            let payload: Vec<u8> = entry.get("p").expect("a payload field");
            DomainEvent::decode(payload.as_slice()).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_ev_1_each_service_starts_with_redis_unreachable_accepts_a_write_and_publishes_when_redis_is_back()
 {
    // A spare port with nothing listening: a private redis-server, stopped.
    let mut redis_server = redis_server_on_spare_port().await;
    redis_server.stop().await;
    let prefix = unique_prefix();
    let mut settings = CommonSettings {
        environment: Environment::Test,
        ..CommonSettings::default()
    };
    settings.redis.url = redis_server.url();
    settings.redis.key_prefix = prefix.clone();
    settings.clock.mode = ClockMode::Settable;
    settings.clock.start = Some("2026-11-27T12:00:00Z".to_owned());
    let ctx = ServiceContext::from_settings_with(&settings, RedisAtStart::Optional)
        .await
        .expect("services start while Redis is unreachable");
    let suite = Suite::start(ctx, 0).await;
    let services = [
        (suite.identity_addr, "ccp.identity.v1.Identity"),
        (suite.accounts_addr, "ccp.accounts.v1.Accounts"),
        (suite.delegation_addr, "ccp.delegation.v1.Delegation"),
    ];
    for (addr, name) in services {
        assert_eq!(status(addr, name).await, ServingStatus::Serving, "{name}");
        wait_status(addr, OutboxRelay::HEALTH_NAME, ServingStatus::NotServing).await;
    }

    // Identity: a first sign-in, then the profile (PROFILE_CREATED).
    let mut identity = IdentityClient::new(channel(suite.identity_addr).await);
    let id_token = suite
        .dev
        .mint(
            &format!("alice-{}", rid()),
            suite.clock.now(),
            Duration::from_secs(300),
        )
        .unwrap();
    let first = identity
        .sign_in(direct(&suite, None, idn::SignInRequest { id_token }))
        .await
        .expect("sign-in while Redis is down")
        .into_inner();
    let created = identity
        .create_profile(direct(
            &suite,
            Some(&first.access_token),
            idn::CreateProfileRequest {
                request_id: rid(),
                profile: Some(idn::Profile {
                    legal_name: "Alice Martin".to_owned(),
                    email: "alice@abc.example".to_owned(),
                    preferred_language: idn::Language::En as i32,
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("a profile is created while Redis is down")
        .into_inner();
    let session = created.session.expect("a session naming the profile");
    let token = session.access_token.as_str();

    // Accounts: the business is registered (BUSINESS_REGISTERED).
    let record = registry().into_iter().find(|r| r.bn9 == ABC).unwrap();
    AccountsClient::new(channel(suite.accounts_addr).await)
        .register_business(direct(
            &suite,
            Some(token),
            acc::RegisterBusinessRequest {
                request_id: rid(),
                program_account: rm(ABC, 1),
                legal_name: record.legal_name.clone(),
                address: record.address.clone(),
                answers: record
                    .known_facts
                    .iter()
                    .map(|f| acc::KnownFactAnswer {
                        question_id: f.question.as_ref().unwrap().id.clone(),
                        answer: f.answer.clone(),
                    })
                    .collect(),
                accepted_terms_version: ccp_accounts::config::DEFAULT_TERMS_VERSION.to_owned(),
            },
        ))
        .await
        .expect("a registration is accepted while Redis is down");

    // Delegation: a client group (CLIENT_GROUP_CHANGED).
    DelegationClient::new(channel(suite.delegation_addr).await)
        .create_client_group(direct(
            &suite,
            Some(token),
            del::CreateClientGroupRequest {
                request_id: rid(),
                parent: format!("businesses/{ABC}"),
                group: Some(del::ClientGroup {
                    display_name: "Ontario importers".to_owned(),
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("a client group is created while Redis is down");

    // Still down: nothing was published, the services still serve.
    for (addr, name) in services {
        assert_eq!(status(addr, name).await, ServingStatus::Serving, "{name}");
        assert_eq!(
            status(addr, OutboxRelay::HEALTH_NAME).await,
            ServingStatus::NotServing,
            "{name}"
        );
    }

    // Redis comes up on that port (empty): each event is published, once.
    redis_server.start().await;
    let client = redis::Client::open(redis_server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let wanted = [
        ("ccp.events.identity", EventType::ProfileCreated),
        ("ccp.events.accounts", EventType::BusinessRegistered),
        ("ccp.events.delegation", EventType::ClientGroupChanged),
    ];
    for (stream, kind) in wanted {
        let key = format!("{prefix}{stream}");
        let found = tokio::time::timeout(WAIT, async {
            loop {
                let events = stream_events(&mut conn, &key).await;
                if events.iter().any(|e| e.r#type() == kind) {
                    return events;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {kind:?} on {key} after Redis returned"));
        let of_kind: Vec<_> = found.iter().filter(|e| e.r#type() == kind).collect();
        assert_eq!(of_kind.len(), 1, "{stream}: {found:?}");
    }
    for (addr, _) in services {
        wait_status(addr, OutboxRelay::HEALTH_NAME, ServingStatus::Serving).await;
    }
    // Once each, still: nothing was published twice while the relays caught up.
    for (stream, kind) in wanted {
        let events = stream_events(&mut conn, &format!("{prefix}{stream}")).await;
        let ids: std::collections::BTreeSet<_> = events.iter().map(|e| e.id.clone()).collect();
        assert_eq!(
            ids.len(),
            events.len(),
            "{stream}: an event published twice"
        );
        assert_eq!(
            events.iter().filter(|e| e.r#type() == kind).count(),
            1,
            "{stream}"
        );
    }
    redis_server.stop().await;
}
