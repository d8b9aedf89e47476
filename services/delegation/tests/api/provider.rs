//! R-DE-5 (client groups, assignments), R-DE-6 facts (assignments outlive the
//! relationship; ended relationships stay in the pair facts), the internal
//! facts and the audit list (R-AU-1).

use ccp_platform::auth::Principal;
use ccp_platform::error::field_violations;
use ccp_platform::testing::TestBackend;
use ccp_proto::common::v1::{EventType, Role};
use ccp_proto::delegation::v1 as pb;
use chrono::Duration;
use prost_types::FieldMask;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::*;

async fn create_group(
    app: &TestApp,
    name: &str,
    clients: &[&str],
) -> Result<pb::ClientGroup, tonic::Status> {
    app.api()
        .create_client_group(app.as_(
            &app.broker_bam,
            pb::CreateClientGroupRequest {
                request_id: Uuid::new_v4().to_string(),
                parent: format!("businesses/{BROKER}"),
                group: Some(pb::ClientGroup {
                    display_name: name.to_owned(),
                    clients: clients.iter().map(|c| (*c).to_owned()).collect(),
                    ..Default::default()
                }),
            },
        ))
        .await
        .map(|r| r.into_inner().group.unwrap())
}

async fn assign(
    app: &TestApp,
    who: &Principal,
    target: pb::assignment::Target,
    role: Role,
) -> Result<pb::Assignment, tonic::Status> {
    app.api()
        .assign_to_client(app.as_(
            &app.broker_bam,
            pb::AssignToClientRequest {
                request_id: Uuid::new_v4().to_string(),
                parent: format!("businesses/{BROKER}"),
                assignment: Some(pb::Assignment {
                    assignee: who.to_string(),
                    target: Some(target),
                    role: role as i32,
                    ..Default::default()
                }),
            },
        ))
        .await
        .map(|r| r.into_inner().assignment.unwrap())
}

async fn assignment_facts_for(
    app: &TestApp,
    who: &Principal,
    client: &str,
) -> Result<pb::AssignmentFacts, tonic::Status> {
    app.facts()
        .get_assignment_facts(
            app.internal(tonic::Request::new(pb::GetAssignmentFactsRequest {
                principal: who.to_string(),
                client: client.to_owned(),
            })),
        )
        .await
        .map(tonic::Response::into_inner)
}

/// The principal's assignment facts for IMPORTER and OTHER, asked one client
/// at a time as the gateway does, in one answer.
async fn assignment_facts(app: &TestApp, who: &Principal) -> pb::AssignmentFacts {
    let mut all = pb::AssignmentFacts::default();
    for client in [IMPORTER, OTHER] {
        let one = assignment_facts_for(app, who, client).await.unwrap();
        assert!(
            one.assignments.iter().all(|a| a.client == client),
            "only the client asked about: {one:?}"
        );
        all.principal = one.principal;
        all.assignments.extend(one.assignments);
        for r in one.revisions {
            if !all.revisions.contains(&r) {
                all.revisions.push(r);
            }
        }
    }
    all
}

#[tokio::test]
async fn r_de_5_client_group_names_are_unique_per_provider_deleted_included() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let g = create_group(&app, "Toronto importers", &[IMPORTER, OTHER])
            .await
            .unwrap();
        assert_eq!(g.clients, vec![OTHER, IMPORTER], "by BN9, {}", app.backend);
        let err = create_group(&app, "TORONTO importers", &[])
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists);
        app.api()
            .delete_client_group(app.as_(
                &app.broker_bam,
                pb::DeleteClientGroupRequest {
                    request_id: "d1".to_owned(),
                    name: g.name.clone(),
                    etag: g.etag.clone(),
                },
            ))
            .await
            .unwrap();
        let err = create_group(&app, "toronto importers", &[])
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::AlreadyExists,
            "a deleted group's name stays taken"
        );
        let grown = app
            .api()
            .add_client_group_clients(app.as_(
                &app.broker_bam,
                pb::AddClientGroupClientsRequest {
                    request_id: "add".to_owned(),
                    group: create_group(&app, "Ottawa", &[]).await.unwrap().name,
                    clients: vec![IMPORTER.to_owned(), IMPORTER.to_owned()],
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .group
            .unwrap();
        assert_eq!(grown.clients, vec![IMPORTER]);
        let err = create_group(&app, "bad", &["123456789"]).await.unwrap_err();
        assert_eq!(field_violations(&err)[0].field, "group.clients[0]");
        let renamed = create_group(&app, "Montreal", &[]).await.unwrap();
        let mut to = renamed.clone();
        to.display_name = "Montréal importers".to_owned();
        let got = app
            .api()
            .update_client_group(app.as_(
                &app.broker_bam,
                pb::UpdateClientGroupRequest {
                    request_id: "u1".to_owned(),
                    group: Some(to),
                    update_mask: Some(FieldMask {
                        paths: vec!["display_name".to_owned()],
                    }),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .group
            .unwrap();
        assert_eq!(got.display_name, "Montréal importers");
        let groups = app
            .api()
            .list_client_groups(app.as_(
                &app.broker_bam,
                pb::ListClientGroupsRequest {
                    parent: format!("businesses/{BROKER}"),
                    show_deleted: true,
                    page_size: 1,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(groups.groups.len(), 1);
        assert!(!groups.next_page_token.is_empty());
        // By name: Montréal importers, Ottawa, Toronto importers (deleted shown).
        assert_eq!(groups.groups[0].display_name, "Montréal importers");
    }
}

#[tokio::test]
async fn r_de_5_members_are_assigned_to_clients_and_groups_with_the_highest_role_in_facts() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let clerk = app.employee(BROKER, &app.broker_bam).await;
        let robot = app.machine_credential(BROKER, &app.broker_bam).await;
        let group = create_group(&app, "all", &[IMPORTER, OTHER]).await.unwrap();
        assign(
            &app,
            &clerk,
            pb::assignment::Target::Client(IMPORTER.to_owned()),
            Role::Reader,
        )
        .await
        .unwrap();
        assign(
            &app,
            &clerk,
            pb::assignment::Target::ClientGroup(group.name.clone()),
            Role::Editor,
        )
        .await
        .unwrap();
        let robot_a = assign(
            &app,
            &robot,
            pb::assignment::Target::Client(IMPORTER.to_owned()),
            Role::Reader,
        )
        .await
        .unwrap();
        let facts = assignment_facts(&app, &clerk).await;
        assert_eq!(facts.assignments.len(), 2, "{}", app.backend);
        let imp = facts
            .assignments
            .iter()
            .find(|a| a.client == IMPORTER)
            .unwrap();
        assert_eq!(
            imp.role,
            Role::Editor as i32,
            "highest of direct Reader and group Editor"
        );
        assert!(imp.direct);
        assert_eq!(imp.client_groups, vec![group.name.clone()]);
        let other = facts
            .assignments
            .iter()
            .find(|a| a.client == OTHER)
            .unwrap();
        assert!(!other.direct);
        assert_eq!(facts.revisions[0].provider, BROKER);
        let rev = facts.revisions[0].revision;
        // Asked one client at a time: a client of none of the clerk's assignments
        // has none, and the client is required (never the whole list, R-GW-2).
        let none = assignment_facts_for(&app, &clerk, FOURTH).await.unwrap();
        assert!(none.assignments.is_empty(), "{none:?}");
        let err = assignment_facts_for(&app, &clerk, "").await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(field_violations(&err)[0].field, "client");
        // Re-assigning the same target replaces the role.
        let replaced = assign(
            &app,
            &robot,
            pb::assignment::Target::Client(IMPORTER.to_owned()),
            Role::Editor,
        )
        .await
        .unwrap();
        assert_eq!(replaced.name, robot_a.name);
        let robot_facts = assignment_facts(&app, &robot).await;
        assert_eq!(robot_facts.assignments[0].role, Role::Editor as i32);
        assert!(robot_facts.revisions[0].revision > rev);
        // A non-member is refused; Editor/Reader only.
        // A signed-in person who is no member of the broker.
        let stranger = app.person("Stranger").await;
        let err = assign(
            &app,
            &stranger,
            pb::assignment::Target::Client(IMPORTER.to_owned()),
            Role::Reader,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        let err = assign(
            &app,
            &clerk,
            pb::assignment::Target::Client(IMPORTER.to_owned()),
            Role::Bam,
        )
        .await
        .unwrap_err();
        assert_eq!(field_violations(&err)[0].field, "assignment.role");
        // A group change names every assignee of the group.
        app.api()
            .remove_client_group_clients(app.as_(
                &app.broker_bam,
                pb::RemoveClientGroupClientsRequest {
                    request_id: "rm".to_owned(),
                    group: group.name.clone(),
                    clients: vec![OTHER.to_owned()],
                },
            ))
            .await
            .unwrap();
        let events = events_until(&app.ctx, |e| {
            of_type(e, EventType::ClientGroupChanged).len() >= 2
        })
        .await;
        let change = of_type(&events, EventType::ClientGroupChanged)
            .pop()
            .unwrap();
        assert_eq!(change.principals, vec![clerk.to_string()]);
        assert!(change.businesses.contains(&OTHER.to_owned()));
        let facts = assignment_facts(&app, &clerk).await;
        assert_eq!(facts.assignments.len(), 1);
        // Unassign; list.
        let list = app
            .api()
            .list_assignments(app.as_(
                &app.broker_bam,
                pb::ListAssignmentsRequest {
                    parent: format!("businesses/{BROKER}"),
                    assignee: clerk.to_string(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .assignments;
        assert_eq!(list.len(), 2);
        for a in list {
            app.api()
                .unassign(app.as_(
                    &app.broker_bam,
                    pb::UnassignRequest {
                        request_id: a.name.clone(),
                        name: a.name,
                    },
                ))
                .await
                .unwrap();
        }
        assert!(assignment_facts(&app, &clerk).await.assignments.is_empty());
    }
}

#[tokio::test]
async fn r_de_5_r_de_6_assignments_outlive_the_relationship_and_ended_ones_stay_in_facts() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let clerk = app.employee(BROKER, &app.broker_bam).await;
        let rel = app.relate(t0() + Duration::days(30)).await;
        assign(
            &app,
            &clerk,
            pb::assignment::Target::Client(IMPORTER.to_owned()),
            Role::Editor,
        )
        .await
        .unwrap();
        app.api()
            .end_relationship(app.as_(
                &app.importer_bam,
                pb::EndRelationshipRequest {
                    request_id: "end".to_owned(),
                    name: rel.name.clone(),
                    note: "switching brokers".to_owned(),
                },
            ))
            .await
            .unwrap();
        let facts = assignment_facts(&app, &clerk).await;
        assert_eq!(facts.assignments.len(), 1, "{}", app.backend);
        // The end event names the pair and the provider's assignee to the client.
        let events = events_until(&app.ctx, |e| {
            !of_type(e, EventType::RelationshipEnded).is_empty()
        })
        .await;
        let ended = of_type(&events, EventType::RelationshipEnded)
            .pop()
            .unwrap();
        assert!(
            ended.principals.contains(&clerk.to_string()),
            "{:?}",
            ended.principals
        );
        assert_eq!(ended.pairs[0].client, IMPORTER);
        // Who ended it and why, for the notifications service.
        let details: serde_json::Value = serde_json::from_str(&ended.details_json).unwrap();
        assert_eq!(details["end_reason"], "ENDED_BY_CLIENT");
        assert_eq!(details["note"], "switching brokers");
        assert_eq!(ended.actor, app.importer_bam.to_string());
        let pair = app.pair_facts().await;
        assert_eq!(pair.relationships.len(), 1);
        assert_eq!(
            pair.relationships[0].end_reason,
            pb::EndReason::EndedByClient as i32
        );
        assert!(pair.relationships[0].end_time.is_some());
        assert!(pair.revision > 0);
    }
}

#[tokio::test]
async fn r_de_facts_list_clients_pages_by_client_with_every_relationship() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.relate(t0() + Duration::days(5)).await;
        app.set_clock(t0() + Duration::days(6)).await;
        app.relate(t0() + Duration::days(60)).await;
        for bn in [OTHER, FOURTH] {
            let client_bam = app.register_business(bn).await.bam;
            let sent = app.send(bn).await.request.unwrap();
            let mut approval = app.approval(&sent.id, t0() + Duration::days(90));
            approval.name = format!("businesses/{bn}/receivedRequests/{}", sent.id);
            app.api()
                .approve_relationship_request(app.as_(&client_bam, approval))
                .await
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = app
                .facts()
                .list_clients(app.internal(tonic::Request::new(pb::ListClientsRequest {
                    provider: BROKER.to_owned(),
                    page_size: 2,
                    page_token: token.clone(),
                })))
                .await
                .unwrap()
                .into_inner();
            assert!(page.revision > 0);
            for c in page.clients {
                seen.push((c.client, c.relationships.len()));
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(
            seen,
            vec![
                (OTHER.to_owned(), 1),
                (FOURTH.to_owned(), 1),
                (IMPORTER.to_owned(), 2),
            ],
            "{}",
            app.backend
        );
        // Facts need an internal token.
        let err = app
            .facts()
            .get_pair_facts(tonic::Request::new(pb::GetPairFactsRequest {
                provider: BROKER.to_owned(),
                client: IMPORTER.to_owned(),
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
}

#[tokio::test]
async fn r_au_1_both_parties_see_the_relationship_history() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let rel = app.relate(t0() + Duration::days(30)).await;
        let list = |bn: &'static str| {
            let mut api = app.api();
            let req = app.as_(
                &app.importer_bam,
                pb::ListAuditEventsRequest {
                    parent: format!("businesses/{bn}"),
                    page_size: 1,
                    ..Default::default()
                },
            );
            async move { api.list_audit_events(req).await.unwrap().into_inner() }
        };
        for bn in [IMPORTER, BROKER] {
            let page = list(bn).await;
            assert_eq!(page.events.len(), 1, "{}", app.backend);
            assert_eq!(page.events[0].action, "delegation.request.send");
            assert!(!page.next_page_token.is_empty());
        }
        assert_eq!(app.audit_count(IMPORTER).await, 2);
        let all = app
            .api()
            .list_audit_events(app.as_(
                &app.importer_bam,
                pb::ListAuditEventsRequest {
                    parent: format!("businesses/{BROKER}"),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .events;
        assert_eq!(all[1].action, "delegation.request.approve");
        assert_eq!(all[1].target, rel.name);
        assert_eq!(all[1].actor, app.importer_bam.to_string());
        assert_eq!(all[1].acting_for, IMPORTER);
        assert!(all[1].after_json.contains(&rel.id));
        assert_eq!(app.audit_count(OTHER).await, 0);
    }
}
