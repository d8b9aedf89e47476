//! `ccp assignment …`: a provider's employees (or credentials) assigned to
//! clients or client groups with a role.

use crate::client::lang;
use ccp_proto::common::v1::Role;
use ccp_proto::delegation::v1 as pb;
use ccp_proto::delegation::v1::delegation_client::DelegationClient;
use clap::{Args, Subcommand, ValueEnum};

use crate::client::output::{Table, enum_name};
use crate::client::{CliError, ClientOptions, Ctx, emit, emit_list, parse};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AssignRole {
    Editor,
    Reader,
}

/// `ccp assignment …`.
#[derive(Debug, Args)]
pub struct AssignmentArgs {
    #[command(flatten)]
    pub(in crate::client) options: ClientOptions,
    #[command(subcommand)]
    command: AssignmentCommand,
}

#[derive(Debug, Subcommand)]
enum AssignmentCommand {
    /// Assigns a provider's employee (or credential) to a client or a client group.
    ///
    /// Example: ccp assignment create 888316171 --member person:0197… \
    ///            --client-group businesses/888316171/clientGroups/0197… --role editor
    #[command(verbatim_doc_comment)]
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

fn assignment_target(a: &pb::Assignment) -> String {
    match &a.target {
        Some(pb::assignment::Target::Client(c)) => format!("client {c}"),
        Some(pb::assignment::Target::ClientGroup(g)) => format!("group {g}"),
        None => "-".to_owned(),
    }
}

pub(in crate::client) async fn assignment(
    ctx: &mut Ctx,
    args: &AssignmentArgs,
) -> Result<(), CliError> {
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
            let response = ctx
                .call(
                    pb::AssignToClientRequest {
                        request_id: ctx.request_id(),
                        parent: parse::business(provider)?,
                        assignment: Some(pb::Assignment {
                            assignee: parse::principal(member),
                            target: Some(target),
                            role: role as i32,
                            ..Default::default()
                        }),
                    },
                    async |r| client.assign_to_client(r).await,
                )
                .await?;
            emit(ctx, &response, |r| {
                let a = r.assignment.clone().unwrap_or_default();
                println!(
                    "{}",
                    lang::tf(
                        "assigned",
                        &[
                            ("assignee", &a.assignee),
                            ("target", &assignment_target(&a)),
                            ("role", &enum_name(a.role().as_str_name(), "ROLE_")),
                            ("name", &a.name)
                        ]
                    )
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
            let items = ctx
                .list(
                    pb::ListAssignmentsRequest {
                        parent: parent.clone(),
                        assignee: assignee.clone(),
                        client: client_filter.clone(),
                        ..Default::default()
                    },
                    async |r| client.list_assignments(r).await,
                )
                .await?;
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
            let response = ctx
                .call(
                    pb::UnassignRequest {
                        request_id: ctx.request_id(),
                        name: assignment.clone(),
                    },
                    async |r| client.unassign(r).await,
                )
                .await?;
            emit(ctx, &response, |_| {
                println!("{}", lang::tf("removed", &[("name", assignment)]));
            });
        }
    }
    Ok(())
}
