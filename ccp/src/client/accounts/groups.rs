//! `ccp group …`: employee groups, the roles they give and their members.

use crate::client::lang;
use ccp_proto::accounts::v1 as pb;
use ccp_proto::accounts::v1::accounts_client::AccountsClient;
use ccp_proto::common::v1::ProgramRole;
use clap::{Args, Subcommand};

use super::roles_text;
use crate::client::output::{Table, print_fields, time};
use crate::client::{CliError, ClientOptions, Ctx, emit, emit_list, emit_part, parse};

/// `ccp group …`.
#[derive(Debug, Args)]
pub struct GroupArgs {
    #[command(flatten)]
    pub(in crate::client) options: ClientOptions,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// Creates an employee group with roles.
    ///
    /// Example: ccp group create 123456782 --name "Doors team" --grant editor:RM0002
    Create {
        /// The business (BN9).
        business: String,
        /// The group's name (unique in the business).
        #[arg(long)]
        name: String,
        /// A role `pam|editor|reader:PROGRAM`; repeat.
        #[arg(long = "grant", value_name = "ROLE:PROGRAM")]
        grants: Vec<String>,
    },
    /// Lists a business's employee groups.
    ///
    /// Example: ccp group list 123456782
    List {
        /// The business (BN9).
        business: String,
        /// Includes deleted groups.
        #[arg(long)]
        deleted: bool,
    },
    /// Shows a group.
    ///
    /// Example: ccp group show businesses/123456782/employeeGroups/0197…
    Show {
        /// The group's resource name.
        group: String,
    },
    /// Renames a group or replaces its roles.
    ///
    /// Example: ccp group update businesses/123456782/employeeGroups/0197… --grant reader:RM0002
    Update {
        /// The group's resource name.
        group: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// The new roles `pam|editor|reader:PROGRAM` (replace the old ones); repeat.
        #[arg(long = "grant", value_name = "ROLE:PROGRAM")]
        grants: Vec<String>,
    },
    /// Deletes a group (its members lose the roles it gave).
    ///
    /// Example: ccp group delete businesses/123456782/employeeGroups/0197…
    Delete {
        /// The group's resource name.
        group: String,
    },
    /// Adds members (principals) to a group.
    ///
    /// Example: ccp group add businesses/123456782/employeeGroups/0197… person:0197…
    Add {
        /// The group's resource name.
        group: String,
        /// The principals to add (`person:<uuid>` or `credential:<uuid>`).
        #[arg(required = true)]
        principals: Vec<String>,
    },
    /// Removes members (principals) from a group.
    ///
    /// Example: ccp group remove businesses/123456782/employeeGroups/0197… person:0197…
    Remove {
        /// The group's resource name.
        group: String,
        /// The principals to remove.
        #[arg(required = true)]
        principals: Vec<String>,
    },
}

fn print_group(g: &pb::EmployeeGroup) {
    print_fields(&[
        ("group", g.name.clone()),
        ("name", g.display_name.clone()),
        ("roles", roles_text(false, &g.roles)),
        ("members", g.members.join(", ")),
        ("deleted", time(g.delete_time.as_ref())),
    ]);
}

fn group_roles(bn9: &str, grants: &[String]) -> Result<Vec<ProgramRole>, CliError> {
    let parsed = parse::grants(bn9, grants)?;
    if parsed.business_manager {
        return Err(CliError::usage(
            "a group cannot make its members BAM: grant pam, editor or reader on a program",
        ));
    }
    Ok(parsed.program_roles)
}

pub(in crate::client) async fn group(ctx: &mut Ctx, args: &GroupArgs) -> Result<(), CliError> {
    let mut client = AccountsClient::new(ctx.channel().await?);
    match &args.command {
        GroupCommand::Create {
            business,
            name,
            grants,
        } => {
            let bn9 = parse::bn9(business)?;
            let roles = group_roles(&bn9, grants)?;
            let response = ctx
                .call(
                    pb::CreateEmployeeGroupRequest {
                        request_id: ctx.request_id(),
                        parent: format!("businesses/{bn9}"),
                        group: Some(pb::EmployeeGroup {
                            display_name: name.clone(),
                            roles,
                            ..Default::default()
                        }),
                    },
                    async |r| client.create_employee_group(r).await,
                )
                .await?;
            emit_part(ctx, &response, response.group.as_ref(), print_group);
        }
        GroupCommand::List { business, deleted } => {
            let parent = parse::business(business)?;
            let items = ctx
                .list(
                    pb::ListEmployeeGroupsRequest {
                        parent: parent.clone(),
                        show_deleted: *deleted,
                        ..Default::default()
                    },
                    async |r| client.list_employee_groups(r).await,
                )
                .await?;
            emit_list(ctx, &items, |items| {
                let mut table = Table::new(&["GROUP", "NAME", "ROLES", "MEMBERS"]);
                for g in items {
                    table.row(vec![
                        g.name.clone(),
                        g.display_name.clone(),
                        roles_text(false, &g.roles),
                        g.members.len().to_string(),
                    ]);
                }
                table.print();
            });
        }
        GroupCommand::Show { group } => {
            let group = ctx
                .call(
                    pb::GetEmployeeGroupRequest {
                        name: group.clone(),
                    },
                    async |r| client.get_employee_group(r).await,
                )
                .await?;
            emit(ctx, &group, print_group);
        }
        GroupCommand::Update {
            group,
            name,
            grants,
        } => {
            let bn9 = parse::owner_of(group)?;
            let mut current = ctx
                .call(
                    pb::GetEmployeeGroupRequest {
                        name: group.clone(),
                    },
                    async |r| client.get_employee_group(r).await,
                )
                .await?;
            let mut paths = Vec::new();
            if let Some(name) = name {
                current.display_name.clone_from(name);
                paths.push("display_name".to_owned());
            }
            if !grants.is_empty() {
                current.roles = group_roles(&bn9, grants)?;
                paths.push("roles".to_owned());
            }
            if paths.is_empty() {
                return Err(CliError::usage("nothing to change: give --name or --grant"));
            }
            let response = ctx
                .call(
                    pb::UpdateEmployeeGroupRequest {
                        request_id: ctx.request_id(),
                        group: Some(current),
                        update_mask: Some(prost_types::FieldMask { paths }),
                    },
                    async |r| client.update_employee_group(r).await,
                )
                .await?;
            emit_part(ctx, &response, response.group.as_ref(), print_group);
        }
        GroupCommand::Delete { group } => {
            let current = ctx
                .call(
                    pb::GetEmployeeGroupRequest {
                        name: group.clone(),
                    },
                    async |r| client.get_employee_group(r).await,
                )
                .await?;
            let response = ctx
                .call(
                    pb::DeleteEmployeeGroupRequest {
                        request_id: ctx.request_id(),
                        name: group.clone(),
                        etag: current.etag,
                    },
                    async |r| client.delete_employee_group(r).await,
                )
                .await?;
            emit(ctx, &response, |_| {
                println!("{}", lang::tf("deleted", &[("name", group)]));
            });
        }
        GroupCommand::Add { group, principals } => {
            let response = ctx
                .call(
                    pb::AddEmployeeGroupMembersRequest {
                        request_id: ctx.request_id(),
                        group: group.clone(),
                        principals: principals.iter().map(|p| parse::principal(p)).collect(),
                    },
                    async |r| client.add_employee_group_members(r).await,
                )
                .await?;
            emit_part(ctx, &response, response.group.as_ref(), print_group);
        }
        GroupCommand::Remove { group, principals } => {
            let response = ctx
                .call(
                    pb::RemoveEmployeeGroupMembersRequest {
                        request_id: ctx.request_id(),
                        group: group.clone(),
                        principals: principals.iter().map(|p| parse::principal(p)).collect(),
                    },
                    async |r| client.remove_employee_group_members(r).await,
                )
                .await?;
            emit_part(ctx, &response, response.group.as_ref(), print_group);
        }
    }
    Ok(())
}
