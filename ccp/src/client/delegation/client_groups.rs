//! `ccp client-group …`: a provider's client groups and their clients.

use crate::client::lang;
use ccp_proto::delegation::v1 as pb;
use ccp_proto::delegation::v1::delegation_client::DelegationClient;
use clap::{Args, Subcommand};

use crate::client::output::{Table, print_fields, time};
use crate::client::{CliError, ClientOptions, Ctx, emit, emit_list, emit_part, parse};

/// `ccp client-group …`.
#[derive(Debug, Args)]
pub struct ClientGroupArgs {
    #[command(flatten)]
    pub(in crate::client) options: ClientOptions,
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

fn print_group(g: &pb::ClientGroup) {
    print_fields(&[
        ("group", g.name.clone()),
        ("name", g.display_name.clone()),
        ("clients", g.clients.join(", ")),
        ("deleted", time(g.delete_time.as_ref())),
    ]);
}

pub(in crate::client) async fn client_group(
    ctx: &mut Ctx,
    args: &ClientGroupArgs,
) -> Result<(), CliError> {
    let mut client = DelegationClient::new(ctx.channel().await?);
    match &args.command {
        ClientGroupCommand::Create {
            provider,
            name,
            clients,
        } => {
            let clients = parse::bn9s(clients)?;
            let response = ctx
                .call(
                    pb::CreateClientGroupRequest {
                        request_id: ctx.request_id(),
                        parent: parse::business(provider)?,
                        group: Some(pb::ClientGroup {
                            display_name: name.clone(),
                            clients,
                            ..Default::default()
                        }),
                    },
                    async |r| client.create_client_group(r).await,
                )
                .await?;
            emit_part(ctx, &response, response.group.as_ref(), print_group);
        }
        ClientGroupCommand::List { provider, deleted } => {
            let parent = parse::business(provider)?;
            let items = ctx
                .list(
                    pb::ListClientGroupsRequest {
                        parent: parent.clone(),
                        show_deleted: *deleted,
                        ..Default::default()
                    },
                    async |r| client.list_client_groups(r).await,
                )
                .await?;
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
            let group = ctx
                .call(
                    pb::GetClientGroupRequest {
                        name: group.clone(),
                    },
                    async |r| client.get_client_group(r).await,
                )
                .await?;
            emit(ctx, &group, print_group);
        }
        ClientGroupCommand::Update { group, name } => {
            let mut current = ctx
                .call(
                    pb::GetClientGroupRequest {
                        name: group.clone(),
                    },
                    async |r| client.get_client_group(r).await,
                )
                .await?;
            current.display_name.clone_from(name);
            let response = ctx
                .call(
                    pb::UpdateClientGroupRequest {
                        request_id: ctx.request_id(),
                        group: Some(current),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["display_name".to_owned()],
                        }),
                    },
                    async |r| client.update_client_group(r).await,
                )
                .await?;
            emit_part(ctx, &response, response.group.as_ref(), print_group);
        }
        ClientGroupCommand::Delete { group } => {
            let current = ctx
                .call(
                    pb::GetClientGroupRequest {
                        name: group.clone(),
                    },
                    async |r| client.get_client_group(r).await,
                )
                .await?;
            let response = ctx
                .call(
                    pb::DeleteClientGroupRequest {
                        request_id: ctx.request_id(),
                        name: group.clone(),
                        etag: current.etag,
                    },
                    async |r| client.delete_client_group(r).await,
                )
                .await?;
            emit(ctx, &response, |_| {
                println!("{}", lang::tf("deleted", &[("name", group)]));
            });
        }
        ClientGroupCommand::Add { group, clients } => {
            let clients = parse::bn9s(clients)?;
            let response = ctx
                .call(
                    pb::AddClientGroupClientsRequest {
                        request_id: ctx.request_id(),
                        group: group.clone(),
                        clients,
                    },
                    async |r| client.add_client_group_clients(r).await,
                )
                .await?;
            emit_part(ctx, &response, response.group.as_ref(), print_group);
        }
        ClientGroupCommand::Remove { group, clients } => {
            let clients = parse::bn9s(clients)?;
            let response = ctx
                .call(
                    pb::RemoveClientGroupClientsRequest {
                        request_id: ctx.request_id(),
                        group: group.clone(),
                        clients,
                    },
                    async |r| client.remove_client_group_clients(r).await,
                )
                .await?;
            emit_part(ctx, &response, response.group.as_ref(), print_group);
        }
    }
    Ok(())
}
