//! `ccp employee …`: access requests, their approval with roles, members
//! and their roles, removal.

use crate::client::lang;
use ccp_proto::accounts::v1 as pb;
use ccp_proto::accounts::v1::accounts_client::AccountsClient;
use clap::{Args, Subcommand, ValueEnum};

use super::roles_text;
use crate::client::output::{Table, enum_name, print_fields, time};
use crate::client::{CliError, ClientOptions, Ctx, emit, emit_headed, emit_list, parse};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RequestState {
    Pending,
    Approved,
    Rejected,
    Withdrawn,
    Expired,
}

impl RequestState {
    fn proto(self) -> i32 {
        use pb::EmployeeRequestState as S;
        (match self {
            Self::Pending => S::Pending,
            Self::Approved => S::Approved,
            Self::Rejected => S::Rejected,
            Self::Withdrawn => S::Withdrawn,
            Self::Expired => S::Expired,
        }) as i32
    }
}

/// `ccp employee …`.
#[derive(Debug, Args)]
pub struct EmployeeArgs {
    #[command(flatten)]
    pub(in crate::client) options: ClientOptions,
    #[command(subcommand)]
    command: EmployeeCommand,
}

#[derive(Debug, Subcommand)]
enum EmployeeCommand {
    /// Asks a business for access (its managers approve or reject).
    ///
    /// Example: ccp employee request 123456782 --note "Customs clerk, Windows division"
    Request {
        /// The business (BN9).
        business: String,
        /// A note for the managers (who you are, what you need).
        #[arg(long)]
        note: String,
    },
    /// Lists your own access requests.
    ///
    /// Example: ccp employee my-requests --state pending
    MyRequests {
        /// Only requests in this state.
        #[arg(long, value_enum)]
        state: Option<RequestState>,
    },
    /// Withdraws your pending access request.
    ///
    /// Example: ccp employee withdraw businesses/123456782/employeeRequests/0197…
    Withdraw {
        /// The request's resource name.
        request: String,
    },
    /// Lists a business's access requests (managers).
    ///
    /// Example: ccp employee requests 123456782 --state pending
    Requests {
        /// The business (BN9).
        business: String,
        /// Only requests in this state.
        #[arg(long, value_enum)]
        state: Option<RequestState>,
    },
    /// Approves an access request with roles.
    ///
    /// Example: ccp employee approve businesses/123456782/employeeRequests/0197… \
    ///            --grant editor:RM0001 --grant reader:RM0002
    #[command(verbatim_doc_comment)]
    Approve {
        /// The request's resource name.
        request: String,
        /// A role: `bam`, or `pam|editor|reader:PROGRAM` (RM0001 or a BN15); repeat.
        #[arg(long = "grant", value_name = "ROLE[:PROGRAM]", required = true)]
        grants: Vec<String>,
    },
    /// Rejects an access request.
    ///
    /// Example: ccp employee reject businesses/123456782/employeeRequests/0197… --reason "Not an employee"
    Reject {
        /// The request's resource name.
        request: String,
        /// Why (the requester sees it).
        #[arg(long)]
        reason: String,
    },
    /// Lists a business's employees and machine credentials with their roles.
    ///
    /// Example: ccp employee list 123456782 --program RM0002
    List {
        /// The business (BN9).
        business: String,
        /// Only members with a role on this program (RM0001 or a BN15).
        #[arg(long)]
        program: Option<String>,
        /// Only members holding this role.
        #[arg(long)]
        role: Option<String>,
    },
    /// Shows one member.
    ///
    /// Example: ccp employee show businesses/123456782/members/person:0197…
    Show {
        /// The member's resource name.
        member: String,
    },
    /// Replaces a member's direct roles.
    ///
    /// Example: ccp employee roles businesses/123456782/members/person:0197… --grant pam:RM0002
    Roles {
        /// The member's resource name.
        member: String,
        /// A role: `bam`, or `pam|editor|reader:PROGRAM`; repeat. None removes every direct role.
        #[arg(long = "grant", value_name = "ROLE[:PROGRAM]")]
        grants: Vec<String>,
    },
    /// Removes a member from the business.
    ///
    /// Example: ccp employee remove businesses/123456782/members/person:0197…
    Remove {
        /// The member's resource name.
        member: String,
    },
}

fn request_state(r: &pb::EmployeeRequest) -> String {
    enum_name(r.state().as_str_name(), "EMPLOYEE_REQUEST_STATE_")
}

fn print_requests(items: &[pb::EmployeeRequest]) {
    let mut table = Table::new(&["NAME", "REQUESTER", "STATE", "NOTE", "EXPIRES"]);
    for r in items {
        let who = if r.requester_name.is_empty() {
            r.requester.clone()
        } else {
            format!("{} <{}>", r.requester_name, r.requester_email)
        };
        table.row(vec![
            r.name.clone(),
            who,
            request_state(r),
            r.note.clone(),
            time(r.expire_time.as_ref()),
        ]);
    }
    table.print();
}

fn print_member(m: &pb::Member) {
    print_fields(&[
        ("member", m.name.clone()),
        ("principal", m.principal.clone()),
        ("name", m.display_name.clone()),
        ("email", m.email.clone()),
        (
            "direct roles",
            roles_text(m.business_manager, &m.direct_roles),
        ),
        (
            "effective roles",
            roles_text(m.business_manager, &m.effective_roles),
        ),
        ("groups", m.employee_groups.join(", ")),
        ("joined", time(m.join_time.as_ref())),
    ]);
}

pub(in crate::client) async fn employee(
    ctx: &mut Ctx,
    args: &EmployeeArgs,
) -> Result<(), CliError> {
    let mut client = AccountsClient::new(ctx.channel().await?);
    match &args.command {
        EmployeeCommand::Request { business, note } => {
            let response = ctx
                .call(
                    pb::RequestEmployeeAccessRequest {
                        request_id: ctx.request_id(),
                        parent: parse::business(business)?,
                        note: note.clone(),
                    },
                    async |r| client.request_employee_access(r).await,
                )
                .await?;
            emit(ctx, &response, |r| {
                let req = r.request.clone().unwrap_or_default();
                println!(
                    "{}",
                    lang::tf(
                        "requested",
                        &[
                            ("name", &req.name),
                            ("time", &time(req.expire_time.as_ref()))
                        ]
                    )
                );
            });
        }
        EmployeeCommand::MyRequests { state } => {
            let state = state.map_or(0, RequestState::proto);
            let items = ctx
                .list(
                    pb::ListMyEmployeeRequestsRequest {
                        state,
                        ..Default::default()
                    },
                    async |r| client.list_my_employee_requests(r).await,
                )
                .await?;
            emit_list(ctx, &items, |items| {
                let mut table = Table::new(&["NAME", "BUSINESS", "STATE", "EXPIRES", "REASON"]);
                for r in items {
                    table.row(vec![
                        r.name.clone(),
                        r.business_legal_name.clone(),
                        request_state(r),
                        time(r.expire_time.as_ref()),
                        r.reject_reason.clone(),
                    ]);
                }
                table.print();
            });
        }
        EmployeeCommand::Withdraw { request } => {
            let response = ctx
                .call(
                    pb::WithdrawEmployeeRequestRequest {
                        request_id: ctx.request_id(),
                        name: request.clone(),
                    },
                    async |r| client.withdraw_employee_request(r).await,
                )
                .await?;
            emit(ctx, &response, |r| {
                let req = r.request.clone().unwrap_or_default();
                println!("{}: {}", req.name, request_state(&req));
            });
        }
        EmployeeCommand::Requests { business, state } => {
            let parent = parse::business(business)?;
            let state = state.map_or(0, RequestState::proto);
            let items = ctx
                .list(
                    pb::ListEmployeeRequestsRequest {
                        parent: parent.clone(),
                        state,
                        ..Default::default()
                    },
                    async |r| client.list_employee_requests(r).await,
                )
                .await?;
            emit_list(ctx, &items, print_requests);
        }
        EmployeeCommand::Approve { request, grants } => {
            let bn9 = parse::owner_of(request)?;
            let grants = parse::grants(&bn9, grants)?;
            let response = ctx
                .call(
                    pb::ApproveEmployeeRequestRequest {
                        request_id: ctx.request_id(),
                        name: request.clone(),
                        grants: Some(grants),
                    },
                    async |r| client.approve_employee_request(r).await,
                )
                .await?;
            emit_headed(
                ctx,
                &response,
                "approved",
                response.member.as_ref(),
                print_member,
            );
        }
        EmployeeCommand::Reject { request, reason } => {
            let response = ctx
                .call(
                    pb::RejectEmployeeRequestRequest {
                        request_id: ctx.request_id(),
                        name: request.clone(),
                        reason: reason.clone(),
                    },
                    async |r| client.reject_employee_request(r).await,
                )
                .await?;
            emit(ctx, &response, |r| {
                let req = r.request.clone().unwrap_or_default();
                println!("{}: {}", req.name, request_state(&req));
            });
        }
        EmployeeCommand::List {
            business,
            program,
            role,
        } => {
            let bn9 = parse::bn9(business)?;
            let parent = format!("businesses/{bn9}");
            let program_account = program
                .as_deref()
                .map(|p| parse::program(&bn9, p))
                .unwrap_or_default();
            let role = role
                .as_deref()
                .map(parse::role)
                .transpose()?
                .map_or(0, |r| r as i32);
            let items = ctx
                .list(
                    pb::ListEmployeesRequest {
                        parent: parent.clone(),
                        program_account: program_account.clone(),
                        role,
                        ..Default::default()
                    },
                    async |r| client.list_employees(r).await,
                )
                .await?;
            emit_list(ctx, &items, |items| {
                let mut table = Table::new(&["MEMBER", "NAME", "EMAIL", "ROLES"]);
                for m in items {
                    table.row(vec![
                        m.name.clone(),
                        m.display_name.clone(),
                        m.email.clone(),
                        roles_text(m.business_manager, &m.effective_roles),
                    ]);
                }
                table.print();
            });
        }
        EmployeeCommand::Show { member } => {
            let member = ctx
                .call(
                    pb::GetMemberRequest {
                        name: member.clone(),
                    },
                    async |r| client.get_member(r).await,
                )
                .await?;
            emit(ctx, &member, print_member);
        }
        EmployeeCommand::Roles { member, grants } => {
            let bn9 = parse::owner_of(member)?;
            let grants = parse::grants(&bn9, grants)?;
            let current = ctx
                .call(
                    pb::GetMemberRequest {
                        name: member.clone(),
                    },
                    async |r| client.get_member(r).await,
                )
                .await?;
            let response = ctx
                .call(
                    pb::SetMemberRolesRequest {
                        request_id: ctx.request_id(),
                        name: member.clone(),
                        grants: Some(grants),
                        etag: current.etag,
                    },
                    async |r| client.set_member_roles(r).await,
                )
                .await?;
            emit(ctx, &response, |r| {
                if r.removed {
                    println!(
                        "{}",
                        lang::tf("member-removed-no-role", &[("member", member)])
                    );
                } else if let Some(m) = &r.member {
                    print_member(m);
                }
            });
        }
        EmployeeCommand::Remove { member } => {
            let current = ctx
                .call(
                    pb::GetMemberRequest {
                        name: member.clone(),
                    },
                    async |r| client.get_member(r).await,
                )
                .await?;
            let response = ctx
                .call(
                    pb::RemoveMemberRequest {
                        request_id: ctx.request_id(),
                        name: member.clone(),
                        etag: current.etag,
                    },
                    async |r| client.remove_member(r).await,
                )
                .await?;
            emit(ctx, &response, |_| {
                println!("{}", lang::tf("removed", &[("name", member)]));
            });
        }
    }
    Ok(())
}
