//! `ccp relationship …`: relationship requests a provider sends and a client
//! approves or rejects, and the relationships they start.

use ccp_proto::delegation::v1 as pb;
use ccp_proto::delegation::v1::delegation_client::DelegationClient;
use clap::{Args, Subcommand, ValueEnum};

use crate::client::output::{Table, enum_name, print_fields, time};
use crate::client::{CliError, ClientOptions, Ctx, emit, emit_headed, emit_list, emit_part, parse};

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

/// `ccp relationship …`.
#[derive(Debug, Args)]
pub struct RelationshipArgs {
    #[command(flatten)]
    pub(in crate::client) options: ClientOptions,
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
    #[command(verbatim_doc_comment)]
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

fn programs(client_bn9: &str, values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|p| parse::program(client_bn9, p))
        .collect()
}

pub(in crate::client) async fn relationship(
    ctx: &mut Ctx,
    args: &RelationshipArgs,
) -> Result<(), CliError> {
    let mut client = DelegationClient::new(ctx.channel().await?);
    match &args.command {
        RelationshipCommand::Request {
            provider,
            client: client_bn,
            note,
            programs: program_args,
        } => {
            let client_bn9 = parse::bn9(client_bn)?;
            let response = ctx
                .call(
                    pb::SendRelationshipRequestRequest {
                        request_id: ctx.request_id(),
                        parent: parse::business(provider)?,
                        client: client_bn9.clone(),
                        program_accounts: programs(&client_bn9, program_args),
                        note: note.clone(),
                    },
                    async |r| client.send_relationship_request(r).await,
                )
                .await?;
            emit(ctx, &response, |r| {
                print_requests(std::slice::from_ref(&r.request.clone().unwrap_or_default()));
            });
        }
        RelationshipCommand::Received { business, state }
        | RelationshipCommand::Sent { business, state } => {
            let parent = parse::business(business)?;
            let state = state.map_or(0, RequestStateArg::proto);
            let items = if matches!(args.command, RelationshipCommand::Received { .. }) {
                ctx.list(
                    pb::ListReceivedRequestsRequest {
                        parent: parent.clone(),
                        state,
                        ..Default::default()
                    },
                    async |r| client.list_received_requests(r).await,
                )
                .await?
            } else {
                ctx.list(
                    pb::ListSentRequestsRequest {
                        parent: parent.clone(),
                        state,
                        ..Default::default()
                    },
                    async |r| client.list_sent_requests(r).await,
                )
                .await?
            };
            emit_list(ctx, &items, print_requests);
        }
        RelationshipCommand::Withdraw { request } => {
            let response = ctx
                .call(
                    pb::WithdrawRelationshipRequestRequest {
                        request_id: ctx.request_id(),
                        name: request.clone(),
                    },
                    async |r| client.withdraw_relationship_request(r).await,
                )
                .await?;
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
            let response = ctx
                .call(
                    pb::ApproveRelationshipRequestRequest {
                        request_id: ctx.request_id(),
                        name: request.clone(),
                        level: level.proto(),
                        program_accounts: programs(&client_bn9, program_args),
                        expire_time: Some(parse::instant(ctx.now(), expires)?),
                        visibility: visibility(words)?,
                    },
                    async |r| client.approve_relationship_request(r).await,
                )
                .await?;
            emit_headed(
                ctx,
                &response,
                "approved",
                response.relationship.as_ref(),
                print_relationship,
            );
        }
        RelationshipCommand::Reject { request, reason } => {
            let response = ctx
                .call(
                    pb::RejectRelationshipRequestRequest {
                        request_id: ctx.request_id(),
                        name: request.clone(),
                        reason: reason.clone(),
                    },
                    async |r| client.reject_relationship_request(r).await,
                )
                .await?;
            emit(ctx, &response, |r| {
                print_requests(std::slice::from_ref(&r.request.clone().unwrap_or_default()));
            });
        }
        RelationshipCommand::Show { relationship } => {
            let rel = ctx
                .call(
                    pb::GetRelationshipRequest {
                        name: relationship.clone(),
                    },
                    async |r| client.get_relationship(r).await,
                )
                .await?;
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
            let items = ctx
                .list(
                    pb::ListRelationshipsRequest {
                        parent: parent.clone(),
                        side,
                        state,
                        ..Default::default()
                    },
                    async |r| client.list_relationships(r).await,
                )
                .await?;
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
            let mut current = ctx
                .call(
                    pb::GetRelationshipRequest {
                        name: relationship.clone(),
                    },
                    async |r| client.get_relationship(r).await,
                )
                .await?;
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
            let response = ctx
                .call(
                    pb::UpdateRelationshipRequest {
                        request_id: ctx.request_id(),
                        relationship: Some(current),
                        update_mask: Some(prost_types::FieldMask { paths }),
                    },
                    async |r| client.update_relationship(r).await,
                )
                .await?;
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
            let response = ctx
                .call(
                    pb::EndRelationshipRequest {
                        request_id: ctx.request_id(),
                        name: relationship.clone(),
                        note: reason.clone(),
                    },
                    async |r| client.end_relationship(r).await,
                )
                .await?;
            emit_headed(
                ctx,
                &response,
                "ended",
                response.relationship.as_ref(),
                print_relationship,
            );
        }
    }
    Ok(())
}
