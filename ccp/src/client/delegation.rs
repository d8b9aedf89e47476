//! Delegation commands: relationship requests and relationships between a
//! customs broker (the provider) and an importer (the client), the broker's
//! client groups and its employees' assignments.

use ccp_proto::common::v1::Role;
use ccp_proto::delegation::v1 as pb;
use ccp_proto::delegation::v1::delegation_client::DelegationClient;
use clap::{Args, Subcommand, ValueEnum};

use super::output::{Table, enum_name, print_fields, time};
use super::{CliError, ClientOptions, Ctx, all_pages, emit, emit_list, emit_part, parse};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RequestStateArg {
    Pending,
    Approved,
    Rejected,
    Withdrawn,
    Expired,
}

impl RequestStateArg {
    fn proto(self) -> i32 {
        use pb::RelationshipRequestState as S;
        (match self {
            Self::Pending => S::Pending,
            Self::Approved => S::Approved,
            Self::Rejected => S::Rejected,
            Self::Withdrawn => S::Withdrawn,
            Self::Expired => S::Expired,
        }) as i32
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LevelArg {
    /// Every program account of the client, present and future.
    Business,
    /// Only the program accounts named with --program.
    Program,
}

impl LevelArg {
    fn proto(self) -> i32 {
        match self {
            Self::Business => pb::RelationshipLevel::Business as i32,
            Self::Program => pb::RelationshipLevel::Program as i32,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SideArg {
    Client,
    Provider,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StateArg {
    Active,
    Ended,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AssignRole {
    Editor,
    Reader,
}

/// `ccp relationship …`.
#[derive(Debug, Args)]
pub struct RelationshipArgs {
    #[command(flatten)]
    pub(super) options: ClientOptions,
    #[command(subcommand)]
    command: RelationshipCommand,
}

#[derive(Debug, Subcommand)]
enum RelationshipCommand {
    /// Sends a relationship request from a provider (broker) to a client
    /// (importer); the client need not be registered yet.
    ///
    /// Example: ccp relationship request 888316171 123456782 --note "ITN Logistics, your customs broker"
    Request {
        /// The provider sending it (BN9).
        provider: String,
        /// The client asked (BN9).
        client: String,
        /// A note to the client.
        #[arg(long)]
        note: String,
        /// A program account of the client asked for (RM0001 or a BN15); repeat.
        #[arg(long = "program", value_name = "PROGRAM")]
        programs: Vec<String>,
    },
    /// Lists the requests a business received (as client).
    ///
    /// Example: ccp relationship received 123456782 --state pending
    Received {
        /// The business (BN9).
        business: String,
        /// Only requests in this state.
        #[arg(long, value_enum)]
        state: Option<RequestStateArg>,
    },
    /// Lists the requests a business sent (as provider).
    ///
    /// Example: ccp relationship sent 888316171
    Sent {
        /// The business (BN9).
        business: String,
        /// Only requests in this state.
        #[arg(long, value_enum)]
        state: Option<RequestStateArg>,
    },
    /// Withdraws a pending request the business sent.
    ///
    /// Example: ccp relationship withdraw businesses/888316171/sentRequests/0197…
    Withdraw {
        /// The request, named under sentRequests.
        request: String,
    },
    /// Approves a received request: level, expiry and visibility.
    ///
    /// Example: ccp relationship approve businesses/123456782/receivedRequests/0197… \
    ///            --level program --program RM0001 --expires 90d --visibility provider,client
    Approve {
        /// The request, named under receivedRequests.
        request: String,
        /// Business (all programs) or program level.
        #[arg(long, value_enum)]
        level: LevelArg,
        /// A program account covered at program level (RM0001 or a BN15); repeat.
        #[arg(long = "program", value_name = "PROGRAM")]
        programs: Vec<String>,
        /// When it expires: 90d, 2027-03-01 or RFC 3339 (at most 730 days ahead).
        #[arg(long)]
        expires: String,
        /// Whose submissions the provider sees: provider (required), client, others.
        #[arg(long, value_delimiter = ',', default_value = "provider")]
        visibility: Vec<String>,
    },
    /// Rejects a received request.
    ///
    /// Example: ccp relationship reject businesses/123456782/receivedRequests/0197… --reason "Unknown broker"
    Reject {
        /// The request, named under receivedRequests.
        request: String,
        /// Why (the provider sees it).
        #[arg(long)]
        reason: String,
    },
    /// Shows a relationship.
    ///
    /// Example: ccp relationship show businesses/123456782/relationships/0197…
    Show {
        /// The relationship, named under either side.
        relationship: String,
    },
    /// Lists a business's relationships.
    ///
    /// Example: ccp relationship list 123456782 --side client --state active
    List {
        /// The business (BN9).
        business: String,
        /// Only where the business is this side.
        #[arg(long, value_enum)]
        side: Option<SideArg>,
        /// Only relationships in this state.
        #[arg(long, value_enum)]
        state: Option<StateArg>,
    },
    /// Changes a relationship's expiry, visibility or scope (the client).
    ///
    /// Example: ccp relationship update businesses/123456782/relationships/0197… --expires 180d
    Update {
        /// The relationship, named under the client.
        relationship: String,
        /// A new expiry.
        #[arg(long)]
        expires: Option<String>,
        /// New visibility: provider (required), client, others.
        #[arg(long, value_delimiter = ',')]
        visibility: Vec<String>,
        /// A new level.
        #[arg(long, value_enum)]
        level: Option<LevelArg>,
        /// The programs covered at program level (replace the old ones); repeat.
        #[arg(long = "program", value_name = "PROGRAM")]
        programs: Vec<String>,
    },
    /// Ends a relationship now (either side).
    ///
    /// Example: ccp relationship end businesses/123456782/relationships/0197… --reason "Changed brokers"
    End {
        /// The relationship, named under the side ending it.
        relationship: String,
        /// Why (both sides see it in their audit history).
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// `ccp client-group …`.
#[derive(Debug, Args)]
pub struct ClientGroupArgs {
    #[command(flatten)]
    pub(super) options: ClientOptions,
    #[command(subcommand)]
    command: ClientGroupCommand,
}

#[derive(Debug, Subcommand)]
enum ClientGroupCommand {
    /// Creates a client group of a provider.
    ///
    /// Example: ccp client-group create 888316171 --name "Ontario importers" --client 123456782
    Create {
        /// The provider (BN9).
        provider: String,
        /// The group's name (unique for the provider).
        #[arg(long)]
        name: String,
        /// A client (BN9) to put in it; repeat.
        #[arg(long = "client", value_name = "BN9")]
        clients: Vec<String>,
    },
    /// Lists a provider's client groups.
    ///
    /// Example: ccp client-group list 888316171
    List {
        /// The provider (BN9).
        provider: String,
        /// Includes deleted groups.
        #[arg(long)]
        deleted: bool,
    },
    /// Shows a client group.
    ///
    /// Example: ccp client-group show businesses/888316171/clientGroups/0197…
    Show {
        /// The group's resource name.
        group: String,
    },
    /// Renames a client group.
    ///
    /// Example: ccp client-group update businesses/888316171/clientGroups/0197… --name "GTA importers"
    Update {
        /// The group's resource name.
        group: String,
        /// The new name.
        #[arg(long)]
        name: String,
    },
    /// Deletes a client group (assignments to it stop giving access).
    ///
    /// Example: ccp client-group delete businesses/888316171/clientGroups/0197…
    Delete {
        /// The group's resource name.
        group: String,
    },
    /// Adds clients (BN9s) to a group.
    ///
    /// Example: ccp client-group add businesses/888316171/clientGroups/0197… 123456782
    Add {
        /// The group's resource name.
        group: String,
        /// The clients (BN9).
        #[arg(required = true)]
        clients: Vec<String>,
    },
    /// Removes clients (BN9s) from a group.
    ///
    /// Example: ccp client-group remove businesses/888316171/clientGroups/0197… 123456782
    Remove {
        /// The group's resource name.
        group: String,
        /// The clients (BN9).
        #[arg(required = true)]
        clients: Vec<String>,
    },
}

/// `ccp assignment …`.
#[derive(Debug, Args)]
pub struct AssignmentArgs {
    #[command(flatten)]
    pub(super) options: ClientOptions,
    #[command(subcommand)]
    command: AssignmentCommand,
}

#[derive(Debug, Subcommand)]
enum AssignmentCommand {
    /// Assigns a provider's employee (or credential) to a client or a client group.
    ///
    /// Example: ccp assignment create 888316171 --member person:0197… \
    ///            --client-group businesses/888316171/clientGroups/0197… --role editor
    Create {
        /// The provider (BN9).
        provider: String,
        /// The provider's member (`person:<uuid>`, `credential:<uuid>` or its member name).
        #[arg(long)]
        member: String,
        /// A client (BN9).
        #[arg(
            long,
            conflicts_with = "client_group",
            required_unless_present = "client_group"
        )]
        client: Option<String>,
        /// A client group's resource name.
        #[arg(long)]
        client_group: Option<String>,
        /// Editor or reader.
        #[arg(long, value_enum)]
        role: AssignRole,
    },
    /// Lists a provider's assignments.
    ///
    /// Example: ccp assignment list 888316171 --member person:0197…
    List {
        /// The provider (BN9).
        provider: String,
        /// Only this member's.
        #[arg(long)]
        member: Option<String>,
        /// Only direct assignments to this client (BN9).
        #[arg(long)]
        client: Option<String>,
    },
    /// Removes an assignment.
    ///
    /// Example: ccp assignment delete businesses/888316171/assignments/0197…
    Delete {
        /// The assignment's resource name.
        assignment: String,
    },
}

fn visibility(words: &[String]) -> Result<Vec<i32>, CliError> {
    words
        .iter()
        .map(|w| match w.trim().to_lowercase().as_str() {
            "provider" | "broker" => Ok(pb::Visibility::SubmittedByProvider as i32),
            "client" | "importer" => Ok(pb::Visibility::SubmittedByClient as i32),
            "others" | "other" => Ok(pb::Visibility::SubmittedByOtherBusinesses as i32),
            other => Err(CliError::usage(format!(
                "unknown visibility `{other}`: provider, client or others"
            ))),
        })
        .collect()
}

fn visibility_text(values: &[i32]) -> String {
    values
        .iter()
        .map(|v| match pb::Visibility::try_from(*v) {
            Ok(pb::Visibility::SubmittedByProvider) => "provider",
            Ok(pb::Visibility::SubmittedByClient) => "client",
            Ok(pb::Visibility::SubmittedByOtherBusinesses) => "others",
            _ => "?",
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn programs_text(programs: &[String]) -> String {
    if programs.is_empty() {
        "-".to_owned()
    } else {
        programs.join(",")
    }
}

fn print_requests(items: &[pb::RelationshipRequest]) {
    let mut table = Table::new(&[
        "NAME", "PROVIDER", "CLIENT", "STATE", "PROGRAMS", "NOTE", "EXPIRES",
    ]);
    for r in items {
        table.row(vec![
            r.name.clone(),
            r.provider.clone(),
            r.client.clone(),
            enum_name(r.state().as_str_name(), "RELATIONSHIP_REQUEST_STATE_"),
            programs_text(&r.program_accounts),
            r.note.clone(),
            time(r.expire_time.as_ref()),
        ]);
    }
    table.print();
}

fn print_relationship(r: &pb::Relationship) {
    print_fields(&[
        ("relationship", r.name.clone()),
        ("provider", r.provider.clone()),
        ("client", r.client.clone()),
        (
            "level",
            enum_name(r.level().as_str_name(), "RELATIONSHIP_LEVEL_"),
        ),
        ("programs", programs_text(&r.program_accounts)),
        ("visibility", visibility_text(&r.visibility)),
        (
            "state",
            enum_name(r.state().as_str_name(), "RELATIONSHIP_STATE_"),
        ),
        ("started", time(r.start_time.as_ref())),
        ("expires", time(r.expire_time.as_ref())),
        ("ended", time(r.end_time.as_ref())),
        (
            "end reason",
            enum_name(r.end_reason().as_str_name(), "END_REASON_"),
        ),
        ("ended by", r.ended_by.clone()),
        ("end note", r.end_note.clone()),
    ]);
}

fn print_group(g: &pb::ClientGroup) {
    print_fields(&[
        ("group", g.name.clone()),
        ("name", g.display_name.clone()),
        ("clients", g.clients.join(", ")),
        ("deleted", time(g.delete_time.as_ref())),
    ]);
}

fn programs(client_bn9: &str, values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|p| parse::program(client_bn9, p))
        .collect()
}

pub(super) async fn relationship(ctx: &mut Ctx, args: &RelationshipArgs) -> Result<(), CliError> {
    let mut client = DelegationClient::new(ctx.channel().await?);
    match &args.command {
        RelationshipCommand::Request {
            provider,
            client: client_bn,
            note,
            programs: program_args,
        } => {
            let client_bn9 = parse::bn9(client_bn)?;
            let req = ctx
                .request(pb::SendRelationshipRequestRequest {
                    request_id: ctx.request_id(),
                    parent: parse::business(provider)?,
                    client: client_bn9.clone(),
                    program_accounts: programs(&client_bn9, program_args),
                    note: note.clone(),
                })
                .await?;
            let response = client.send_relationship_request(req).await?.into_inner();
            emit(ctx, &response, |r| {
                print_requests(std::slice::from_ref(&r.request.clone().unwrap_or_default()));
            });
        }
        RelationshipCommand::Received { business, state }
        | RelationshipCommand::Sent { business, state } => {
            let parent = parse::business(business)?;
            let state = state.map_or(0, RequestStateArg::proto);
            let items = if matches!(args.command, RelationshipCommand::Received { .. }) {
                all_pages!(
                    ctx,
                    |token| client.list_received_requests(
                        ctx.request(pb::ListReceivedRequestsRequest {
                            parent: parent.clone(),
                            state,
                            page_size: 100,
                            page_token: token.clone(),
                        })
                        .await?
                    ),
                    requests
                )
            } else {
                all_pages!(
                    ctx,
                    |token| client.list_sent_requests(
                        ctx.request(pb::ListSentRequestsRequest {
                            parent: parent.clone(),
                            state,
                            page_size: 100,
                            page_token: token.clone(),
                        })
                        .await?
                    ),
                    requests
                )
            };
            emit_list(ctx, &items, print_requests);
        }
        RelationshipCommand::Withdraw { request } => {
            let req = ctx
                .request(pb::WithdrawRelationshipRequestRequest {
                    request_id: ctx.request_id(),
                    name: request.clone(),
                })
                .await?;
            let response = client
                .withdraw_relationship_request(req)
                .await?
                .into_inner();
            emit(ctx, &response, |r| {
                print_requests(std::slice::from_ref(&r.request.clone().unwrap_or_default()));
            });
        }
        RelationshipCommand::Approve {
            request,
            level,
            programs: program_args,
            expires,
            visibility: words,
        } => {
            // Received requests are named under the client.
            let client_bn9 = parse::owner_of(request)?;
            let req = ctx
                .request(pb::ApproveRelationshipRequestRequest {
                    request_id: ctx.request_id(),
                    name: request.clone(),
                    level: level.proto(),
                    program_accounts: programs(&client_bn9, program_args),
                    expire_time: Some(parse::instant(ctx.now(), expires)?),
                    visibility: visibility(words)?,
                })
                .await?;
            let response = client.approve_relationship_request(req).await?.into_inner();
            emit(ctx, &response, |r| {
                println!("approved");
                if let Some(rel) = &r.relationship {
                    print_relationship(rel);
                }
            });
        }
        RelationshipCommand::Reject { request, reason } => {
            let req = ctx
                .request(pb::RejectRelationshipRequestRequest {
                    request_id: ctx.request_id(),
                    name: request.clone(),
                    reason: reason.clone(),
                })
                .await?;
            let response = client.reject_relationship_request(req).await?.into_inner();
            emit(ctx, &response, |r| {
                print_requests(std::slice::from_ref(&r.request.clone().unwrap_or_default()));
            });
        }
        RelationshipCommand::Show { relationship } => {
            let req = ctx
                .request(pb::GetRelationshipRequest {
                    name: relationship.clone(),
                })
                .await?;
            let rel = client.get_relationship(req).await?.into_inner();
            emit(ctx, &rel, print_relationship);
        }
        RelationshipCommand::List {
            business,
            side,
            state,
        } => {
            let parent = parse::business(business)?;
            let side = match side {
                None => 0,
                Some(SideArg::Client) => pb::RelationshipSide::Client as i32,
                Some(SideArg::Provider) => pb::RelationshipSide::Provider as i32,
            };
            let state = match state {
                None => 0,
                Some(StateArg::Active) => pb::RelationshipState::Active as i32,
                Some(StateArg::Ended) => pb::RelationshipState::Ended as i32,
            };
            let items = all_pages!(
                ctx,
                |token| client.list_relationships(
                    ctx.request(pb::ListRelationshipsRequest {
                        parent: parent.clone(),
                        side,
                        state,
                        page_size: 100,
                        page_token: token.clone(),
                    })
                    .await?
                ),
                relationships
            );
            emit_list(ctx, &items, |items| {
                let mut table = Table::new(&[
                    "NAME", "PROVIDER", "CLIENT", "LEVEL", "PROGRAMS", "STATE", "EXPIRES",
                ]);
                for r in items {
                    table.row(vec![
                        r.name.clone(),
                        r.provider.clone(),
                        r.client.clone(),
                        enum_name(r.level().as_str_name(), "RELATIONSHIP_LEVEL_"),
                        programs_text(&r.program_accounts),
                        enum_name(r.state().as_str_name(), "RELATIONSHIP_STATE_"),
                        time(r.expire_time.as_ref()),
                    ]);
                }
                table.print();
            });
        }
        RelationshipCommand::Update {
            relationship,
            expires,
            visibility: words,
            level,
            programs: program_args,
        } => {
            let req = ctx
                .request(pb::GetRelationshipRequest {
                    name: relationship.clone(),
                })
                .await?;
            let mut current = client.get_relationship(req).await?.into_inner();
            let mut paths = Vec::new();
            if let Some(expires) = expires {
                current.expire_time = Some(parse::instant(ctx.now(), expires)?);
                paths.push("expire_time".to_owned());
            }
            if !words.is_empty() {
                current.visibility = visibility(words)?;
                paths.push("visibility".to_owned());
            }
            if let Some(level) = level {
                current.level = level.proto();
                paths.push("level".to_owned());
            }
            if !program_args.is_empty() {
                current.program_accounts = programs(&current.client, program_args);
                paths.push("program_accounts".to_owned());
            }
            if paths.is_empty() {
                return Err(CliError::usage(
                    "nothing to change: give --expires, --visibility, --level or --program",
                ));
            }
            current.name.clone_from(relationship);
            let req = ctx
                .request(pb::UpdateRelationshipRequest {
                    request_id: ctx.request_id(),
                    relationship: Some(current),
                    update_mask: Some(prost_types::FieldMask { paths }),
                })
                .await?;
            let response = client.update_relationship(req).await?.into_inner();
            emit_part(
                ctx,
                &response,
                response.relationship.as_ref(),
                print_relationship,
            );
        }
        RelationshipCommand::End {
            relationship,
            reason,
        } => {
            let req = ctx
                .request(pb::EndRelationshipRequest {
                    request_id: ctx.request_id(),
                    name: relationship.clone(),
                    note: reason.clone(),
                })
                .await?;
            let response = client.end_relationship(req).await?.into_inner();
            emit(ctx, &response, |r| {
                println!("ended");
                if let Some(rel) = &r.relationship {
                    print_relationship(rel);
                }
            });
        }
    }
    Ok(())
}

pub(super) async fn client_group(ctx: &mut Ctx, args: &ClientGroupArgs) -> Result<(), CliError> {
    let mut client = DelegationClient::new(ctx.channel().await?);
    match &args.command {
        ClientGroupCommand::Create {
            provider,
            name,
            clients,
        } => {
            let clients = parse::bn9s(clients)?;
            let req = ctx
                .request(pb::CreateClientGroupRequest {
                    request_id: ctx.request_id(),
                    parent: parse::business(provider)?,
                    group: Some(pb::ClientGroup {
                        display_name: name.clone(),
                        clients,
                        ..Default::default()
                    }),
                })
                .await?;
            let response = client.create_client_group(req).await?.into_inner();
            emit_part(ctx, &response, response.group.as_ref(), print_group);
        }
        ClientGroupCommand::List { provider, deleted } => {
            let parent = parse::business(provider)?;
            let items = all_pages!(
                ctx,
                |token| client.list_client_groups(
                    ctx.request(pb::ListClientGroupsRequest {
                        parent: parent.clone(),
                        page_size: 100,
                        page_token: token.clone(),
                        show_deleted: *deleted,
                    })
                    .await?
                ),
                groups
            );
            emit_list(ctx, &items, |items| {
                let mut table = Table::new(&["GROUP", "NAME", "CLIENTS"]);
                for g in items {
                    table.row(vec![
                        g.name.clone(),
                        g.display_name.clone(),
                        g.clients.join(","),
                    ]);
                }
                table.print();
            });
        }
        ClientGroupCommand::Show { group } => {
            let req = ctx
                .request(pb::GetClientGroupRequest {
                    name: group.clone(),
                })
                .await?;
            let group = client.get_client_group(req).await?.into_inner();
            emit(ctx, &group, print_group);
        }
        ClientGroupCommand::Update { group, name } => {
            let req = ctx
                .request(pb::GetClientGroupRequest {
                    name: group.clone(),
                })
                .await?;
            let mut current = client.get_client_group(req).await?.into_inner();
            current.display_name.clone_from(name);
            let req = ctx
                .request(pb::UpdateClientGroupRequest {
                    request_id: ctx.request_id(),
                    group: Some(current),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["display_name".to_owned()],
                    }),
                })
                .await?;
            let response = client.update_client_group(req).await?.into_inner();
            emit_part(ctx, &response, response.group.as_ref(), print_group);
        }
        ClientGroupCommand::Delete { group } => {
            let req = ctx
                .request(pb::GetClientGroupRequest {
                    name: group.clone(),
                })
                .await?;
            let current = client.get_client_group(req).await?.into_inner();
            let req = ctx
                .request(pb::DeleteClientGroupRequest {
                    request_id: ctx.request_id(),
                    name: group.clone(),
                    etag: current.etag,
                })
                .await?;
            let response = client.delete_client_group(req).await?.into_inner();
            emit(ctx, &response, |_| println!("deleted {group}"));
        }
        ClientGroupCommand::Add { group, clients } => {
            let clients = parse::bn9s(clients)?;
            let req = ctx
                .request(pb::AddClientGroupClientsRequest {
                    request_id: ctx.request_id(),
                    group: group.clone(),
                    clients,
                })
                .await?;
            let response = client.add_client_group_clients(req).await?.into_inner();
            emit_part(ctx, &response, response.group.as_ref(), print_group);
        }
        ClientGroupCommand::Remove { group, clients } => {
            let clients = parse::bn9s(clients)?;
            let req = ctx
                .request(pb::RemoveClientGroupClientsRequest {
                    request_id: ctx.request_id(),
                    group: group.clone(),
                    clients,
                })
                .await?;
            let response = client.remove_client_group_clients(req).await?.into_inner();
            emit_part(ctx, &response, response.group.as_ref(), print_group);
        }
    }
    Ok(())
}

fn assignment_target(a: &pb::Assignment) -> String {
    match &a.target {
        Some(pb::assignment::Target::Client(c)) => format!("client {c}"),
        Some(pb::assignment::Target::ClientGroup(g)) => format!("group {g}"),
        None => "-".to_owned(),
    }
}

pub(super) async fn assignment(ctx: &mut Ctx, args: &AssignmentArgs) -> Result<(), CliError> {
    let mut client = DelegationClient::new(ctx.channel().await?);
    match &args.command {
        AssignmentCommand::Create {
            provider,
            member,
            client: client_bn,
            client_group,
            role,
        } => {
            let target = match (client_bn, client_group) {
                (Some(c), None) => pb::assignment::Target::Client(parse::bn9(c)?),
                (None, Some(g)) => pb::assignment::Target::ClientGroup(g.clone()),
                _ => {
                    return Err(CliError::usage(
                        "give exactly one of --client BN9 or --client-group GROUP",
                    ));
                }
            };
            let role = match role {
                AssignRole::Editor => Role::Editor,
                AssignRole::Reader => Role::Reader,
            };
            let req = ctx
                .request(pb::AssignToClientRequest {
                    request_id: ctx.request_id(),
                    parent: parse::business(provider)?,
                    assignment: Some(pb::Assignment {
                        assignee: parse::principal(member),
                        target: Some(target),
                        role: role as i32,
                        ..Default::default()
                    }),
                })
                .await?;
            let response = client.assign_to_client(req).await?.into_inner();
            emit(ctx, &response, |r| {
                let a = r.assignment.clone().unwrap_or_default();
                println!(
                    "assigned {} to {} as {} ({})",
                    a.assignee,
                    assignment_target(&a),
                    enum_name(a.role().as_str_name(), "ROLE_"),
                    a.name
                );
            });
        }
        AssignmentCommand::List {
            provider,
            member,
            client: client_bn,
        } => {
            let parent = parse::business(provider)?;
            let assignee = member.as_deref().map(parse::principal).unwrap_or_default();
            let client_filter = client_bn
                .as_deref()
                .map(parse::bn9)
                .transpose()?
                .unwrap_or_default();
            let items = all_pages!(
                ctx,
                |token| client.list_assignments(
                    ctx.request(pb::ListAssignmentsRequest {
                        parent: parent.clone(),
                        assignee: assignee.clone(),
                        client: client_filter.clone(),
                        page_size: 100,
                        page_token: token.clone(),
                    })
                    .await?
                ),
                assignments
            );
            emit_list(ctx, &items, |items| {
                let mut table = Table::new(&["ASSIGNMENT", "MEMBER", "TARGET", "ROLE"]);
                for a in items {
                    table.row(vec![
                        a.name.clone(),
                        a.assignee.clone(),
                        assignment_target(a),
                        enum_name(a.role().as_str_name(), "ROLE_"),
                    ]);
                }
                table.print();
            });
        }
        AssignmentCommand::Delete { assignment } => {
            let req = ctx
                .request(pb::UnassignRequest {
                    request_id: ctx.request_id(),
                    name: assignment.clone(),
                })
                .await?;
            let response = client.unassign(req).await?.into_inner();
            emit(ctx, &response, |_| println!("removed {assignment}"));
        }
    }
    Ok(())
}
