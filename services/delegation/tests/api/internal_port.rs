//! The internal facts API on a port of its own (`server.internal_listen`):
//! served there and only there, while the public API stays on `listen`.

use ccp_platform::testing::TestBackend;
use ccp_proto::delegation::v1 as pb;
use ccp_proto::delegation::v1::delegation_client::DelegationClient;
use ccp_proto::delegation::v1::relationship_facts_client::RelationshipFactsClient;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn with_internal_listen_the_facts_api_is_served_only_on_its_own_port() {
    let backend = TestBackend::sqlite();
    let app = spawn_app_with(&backend, |s| {
        s.server.internal_listen = "127.0.0.1:0".to_owned();
    })
    .await;
    let (public, internal) = app.channels();
    let pair = || {
        app.internal(tonic::Request::new(pb::GetPairFactsRequest {
            provider: BROKER.to_owned(),
            client: IMPORTER.to_owned(),
        }))
    };
    // The facts API answers on its own port ...
    RelationshipFactsClient::new(internal.clone())
        .get_pair_facts(pair())
        .await
        .unwrap();
    // ... and not on the public one.
    let err = RelationshipFactsClient::new(public.clone())
        .get_pair_facts(pair())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    // The public API answers on the public port only.
    let list = || {
        app.as_(
            &app.importer_bam,
            pb::ListRelationshipsRequest {
                parent: format!("businesses/{IMPORTER}"),
                ..Default::default()
            },
        )
    };
    DelegationClient::new(public)
        .list_relationships(list())
        .await
        .unwrap();
    let err = DelegationClient::new(internal)
        .list_relationships(list())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
}
