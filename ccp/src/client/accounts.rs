//! Accounts commands: terms, business registration, employees, employee groups.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use ccp_proto::accounts::v1 as pb;
use ccp_proto::accounts::v1::accounts_client::AccountsClient;
use ccp_proto::common::v1::{Address, ProgramRole};
use clap::{Args, Subcommand, ValueEnum};

use super::output::{Table, enum_name, print_fields, time};
use super::{CliError, ClientOptions, Ctx, all_pages, emit, emit_list, emit_part, parse};

/// `ccp terms`.
#[derive(Debug, Args)]
pub struct TermsArgs {
    #[command(flatten)]
    pub(super) options: ClientOptions,
    /// The language to show.
    #[arg(long, value_parser = ["en", "fr"], default_value = "en")]
    language: String,
}

/// `ccp business …`.
#[derive(Debug, Args)]
pub struct BusinessArgs {
    #[command(flatten)]
    pub(super) options: ClientOptions,
    #[command(subcommand)]
    command: BusinessCommand,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum BusinessCommand {
    /// Shows the known-fact questions and Terms & Conditions version for registering.
    ///
    /// Example: ccp business challenge 123456782RM0001
    Challenge {
        /// One of the business's program accounts (BN15).
        program_account: String,
    },
    /// Registers a business (you become its first Business Account Manager).
    ///
    /// Answers and the acceptance of the Terms & Conditions are asked
    /// interactively when missing and the terminal allows it.
    ///
    /// Example:
    ///   ccp business register 123456782RM0001 --legal-name "ABC Windows & Doors Inc." \
    ///     --line1 "100 Queen Street West" --line2 "Suite 200" --city Toronto --province ON \
    ///     --postal-code "M5H 2N2" --answer daily_notice_total=1234.56 \
    ///     --answer statement_date=2026-02-15 --accept-terms 2026-01
    Register {
        /// One of the business's program accounts (BN15), e.g. 123456782RM0001.
        program_account: String,
        /// The legal name registered with the CRA.
        #[arg(long)]
        legal_name: String,
        /// First street line of the address.
        #[arg(long)]
        line1: String,
        /// Second street line (unit, suite).
        #[arg(long, default_value = "")]
        line2: String,
        /// City or municipality.
        #[arg(long)]
        city: String,
        /// Two-letter province or territory code.
        #[arg(long)]
        province: String,
        /// Postal code.
        #[arg(long)]
        postal_code: String,
        /// ISO country code.
        #[arg(long, default_value = "CA")]
        country: String,
        /// A known-fact answer `QUESTION_ID=VALUE` (repeat for each question).
        #[arg(long = "answer", value_name = "ID=VALUE")]
        answers: Vec<String>,
        /// The Terms & Conditions version you accept (see `ccp terms`).
        #[arg(long, value_name = "VERSION")]
        accept_terms: Option<String>,
    },
    /// Shows a business and its program accounts.
    ///
    /// Example: ccp business show 123456782
    Show {
        /// The business (BN9).
        business: String,
    },
    /// Lists a business's program accounts.
    ///
    /// Example: ccp business programs 123456782
    Programs {
        /// The business (BN9).
        business: String,
    },
    /// Lists the businesses you belong to, with your roles.
    ///
    /// Example: ccp business list
    List,
}

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
    pub(super) options: ClientOptions,
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

/// `ccp group …`.
#[derive(Debug, Args)]
pub struct GroupArgs {
    #[command(flatten)]
    pub(super) options: ClientOptions,
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

fn roles_text(business_manager: bool, roles: &[ProgramRole]) -> String {
    let mut parts = Vec::new();
    if business_manager {
        parts.push("bam".to_owned());
    }
    for r in roles {
        let program = r
            .program_account
            .get(9..)
            .unwrap_or(&r.program_account)
            .to_owned();
        parts.push(format!(
            "{}:{program}",
            enum_name(r.role().as_str_name(), "ROLE_")
        ));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(" ")
    }
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

fn print_group(g: &pb::EmployeeGroup) {
    print_fields(&[
        ("group", g.name.clone()),
        ("name", g.display_name.clone()),
        ("roles", roles_text(false, &g.roles)),
        ("members", g.members.join(", ")),
        ("deleted", time(g.delete_time.as_ref())),
    ]);
}

fn print_business(b: &pb::Business) {
    print_fields(&[
        ("business", b.name.clone()),
        ("legal name", b.legal_name.clone()),
        (
            "address",
            b.address
                .as_ref()
                .map(|a| {
                    [
                        &a.line1,
                        &a.line2,
                        &a.city,
                        &a.province,
                        &a.postal_code,
                        &a.country,
                    ]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
                })
                .unwrap_or_default(),
        ),
        ("registered", time(b.register_time.as_ref())),
        ("terms accepted", b.accepted_terms_version.clone()),
        ("business managers", b.business_manager_count.to_string()),
    ]);
    let mut table = Table::new(&["PROGRAM ACCOUNT", "NAME"]);
    for p in &b.program_accounts {
        table.row(vec![p.bn15.clone(), p.display_name.clone()]);
    }
    table.print();
}

pub(super) async fn terms(ctx: &mut Ctx, args: &TermsArgs) -> Result<(), CliError> {
    let mut client = AccountsClient::new(ctx.channel().await?);
    let terms = client
        .get_terms_and_conditions(pb::GetTermsAndConditionsRequest {})
        .await?
        .into_inner();
    emit(ctx, &terms, |t| {
        println!("Terms & Conditions, version {}", t.version);
        println!();
        println!(
            "{}",
            if args.language == "fr" {
                &t.text_fr
            } else {
                &t.text_en
            }
        );
    });
    Ok(())
}

/// Asks `question` on the terminal and returns the trimmed answer.
fn ask(question: &str) -> Result<String, CliError> {
    eprint!("{question} ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

pub(super) async fn business(ctx: &mut Ctx, args: &BusinessArgs) -> Result<(), CliError> {
    let mut client = AccountsClient::new(ctx.channel().await?);
    match &args.command {
        BusinessCommand::Challenge { program_account } => {
            let request = ctx
                .request(pb::GetRegistrationChallengeRequest {
                    program_account: program_account.trim().to_uppercase(),
                })
                .await?;
            let challenge = client
                .get_registration_challenge(request)
                .await?
                .into_inner();
            emit(ctx, &challenge, |c| {
                println!("business {}; terms version {}", c.business, c.terms_version);
                let mut table = Table::new(&["QUESTION ID", "FORMAT", "QUESTION"]);
                for q in &c.questions {
                    table.row(vec![
                        q.id.clone(),
                        enum_name(q.format().as_str_name(), "ANSWER_FORMAT_"),
                        q.text_en.clone(),
                    ]);
                }
                table.print();
            });
        }
        BusinessCommand::Register {
            program_account,
            legal_name,
            line1,
            line2,
            city,
            province,
            postal_code,
            country,
            answers,
            accept_terms,
        } => {
            let program_account = program_account.trim().to_uppercase();
            let mut given = Vec::new();
            for answer in answers {
                let Some((id, value)) = answer.split_once('=') else {
                    return Err(CliError::usage(format!(
                        "--answer `{answer}`: write QUESTION_ID=VALUE (see `ccp business challenge {program_account}`)"
                    )));
                };
                given.push(pb::KnownFactAnswer {
                    question_id: id.trim().to_owned(),
                    answer: value.trim().to_owned(),
                });
            }
            let interactive = std::io::stdin().is_terminal();
            let request = ctx
                .request(pb::GetRegistrationChallengeRequest {
                    program_account: program_account.clone(),
                })
                .await?;
            let challenge = client
                .get_registration_challenge(request)
                .await?
                .into_inner();
            let missing: Vec<_> = challenge
                .questions
                .iter()
                .filter(|q| !given.iter().any(|a| a.question_id == q.id))
                .collect();
            if !missing.is_empty() {
                if !interactive {
                    let ids: Vec<_> = missing.iter().map(|q| q.id.as_str()).collect();
                    return Err(CliError::usage(format!(
                        "answers missing for: {} (give --answer ID=VALUE; `ccp business challenge {program_account}` shows the questions)",
                        ids.join(", ")
                    )));
                }
                for q in missing {
                    let format = enum_name(q.format().as_str_name(), "ANSWER_FORMAT_");
                    let value = ask(&format!("{} [{format}]:", q.text_en))?;
                    given.push(pb::KnownFactAnswer {
                        question_id: q.id.clone(),
                        answer: value,
                    });
                }
            }
            let accepted = match accept_terms {
                Some(version) => version.clone(),
                None if interactive => {
                    let terms = client
                        .get_terms_and_conditions(pb::GetTermsAndConditionsRequest {})
                        .await?
                        .into_inner();
                    eprintln!("{}", terms.text_en);
                    let yes = ask(&format!(
                        "Do you accept the Terms & Conditions version {}? [y/N]",
                        terms.version
                    ))?;
                    if !yes.eq_ignore_ascii_case("y") && !yes.eq_ignore_ascii_case("yes") {
                        return Err(CliError::usage(
                            "registration needs the Terms & Conditions accepted",
                        ));
                    }
                    terms.version
                }
                None => {
                    return Err(CliError::usage(format!(
                        "give --accept-terms {} after reading `ccp terms`",
                        challenge.terms_version
                    )));
                }
            };
            let request = ctx
                .request(pb::RegisterBusinessRequest {
                    request_id: ctx.request_id(),
                    program_account,
                    legal_name: legal_name.clone(),
                    address: Some(Address {
                        line1: line1.clone(),
                        line2: line2.clone(),
                        city: city.clone(),
                        province: province.clone(),
                        postal_code: postal_code.clone(),
                        country: country.clone(),
                    }),
                    answers: given,
                    accepted_terms_version: accepted,
                })
                .await?;
            let response = client.register_business(request).await?.into_inner();
            emit(ctx, &response, |r| {
                println!("registered; you are its Business Account Manager");
                if let Some(b) = &r.business {
                    print_business(b);
                }
            });
        }
        BusinessCommand::Show { business } => {
            let request = ctx
                .request(pb::GetBusinessRequest {
                    name: parse::business(business)?,
                })
                .await?;
            let business = client.get_business(request).await?.into_inner();
            emit(ctx, &business, print_business);
        }
        BusinessCommand::Programs { business } => {
            let parent = parse::business(business)?;
            let items = all_pages!(
                ctx,
                |token| client.list_program_accounts(
                    ctx.request(pb::ListProgramAccountsRequest {
                        parent: parent.clone(),
                        page_size: 100,
                        page_token: token.clone(),
                    })
                    .await?
                ),
                program_accounts
            );
            emit_list(ctx, &items, |items| {
                let mut table = Table::new(&["PROGRAM ACCOUNT", "NAME", "LINKED"]);
                for p in items {
                    table.row(vec![
                        p.bn15.clone(),
                        p.display_name.clone(),
                        time(p.link_time.as_ref()),
                    ]);
                }
                table.print();
            });
        }
        BusinessCommand::List => {
            let items = all_pages!(
                ctx,
                |token| client.list_my_businesses(
                    ctx.request(pb::ListMyBusinessesRequest {
                        page_size: 100,
                        page_token: token.clone(),
                    })
                    .await?
                ),
                businesses
            );
            emit_list(ctx, &items, |items| {
                let mut table = Table::new(&["BUSINESS", "LEGAL NAME", "YOUR ROLES"]);
                for b in items {
                    table.row(vec![
                        b.business.clone(),
                        b.legal_name.clone(),
                        roles_text(b.business_manager, &b.effective_roles),
                    ]);
                }
                table.print();
            });
        }
    }
    Ok(())
}

pub(super) async fn employee(ctx: &mut Ctx, args: &EmployeeArgs) -> Result<(), CliError> {
    let mut client = AccountsClient::new(ctx.channel().await?);
    match &args.command {
        EmployeeCommand::Request { business, note } => {
            let request = ctx
                .request(pb::RequestEmployeeAccessRequest {
                    request_id: ctx.request_id(),
                    parent: parse::business(business)?,
                    note: note.clone(),
                })
                .await?;
            let response = client.request_employee_access(request).await?.into_inner();
            emit(ctx, &response, |r| {
                let req = r.request.clone().unwrap_or_default();
                println!(
                    "requested: {} (expires {})",
                    req.name,
                    time(req.expire_time.as_ref())
                );
            });
        }
        EmployeeCommand::MyRequests { state } => {
            let state = state.map_or(0, RequestState::proto);
            let items = all_pages!(
                ctx,
                |token| client.list_my_employee_requests(
                    ctx.request(pb::ListMyEmployeeRequestsRequest {
                        state,
                        page_size: 100,
                        page_token: token.clone(),
                    })
                    .await?
                ),
                requests
            );
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
            let req = ctx
                .request(pb::WithdrawEmployeeRequestRequest {
                    request_id: ctx.request_id(),
                    name: request.clone(),
                })
                .await?;
            let response = client.withdraw_employee_request(req).await?.into_inner();
            emit(ctx, &response, |r| {
                let req = r.request.clone().unwrap_or_default();
                println!("{}: {}", req.name, request_state(&req));
            });
        }
        EmployeeCommand::Requests { business, state } => {
            let parent = parse::business(business)?;
            let state = state.map_or(0, RequestState::proto);
            let items = all_pages!(
                ctx,
                |token| client.list_employee_requests(
                    ctx.request(pb::ListEmployeeRequestsRequest {
                        parent: parent.clone(),
                        state,
                        page_size: 100,
                        page_token: token.clone(),
                    })
                    .await?
                ),
                requests
            );
            emit_list(ctx, &items, print_requests);
        }
        EmployeeCommand::Approve { request, grants } => {
            let bn9 = parse::owner_of(request)?;
            let grants = parse::grants(&bn9, grants)?;
            let req = ctx
                .request(pb::ApproveEmployeeRequestRequest {
                    request_id: ctx.request_id(),
                    name: request.clone(),
                    grants: Some(grants),
                })
                .await?;
            let response = client.approve_employee_request(req).await?.into_inner();
            emit(ctx, &response, |r| {
                println!("approved");
                if let Some(m) = &r.member {
                    print_member(m);
                }
            });
        }
        EmployeeCommand::Reject { request, reason } => {
            let req = ctx
                .request(pb::RejectEmployeeRequestRequest {
                    request_id: ctx.request_id(),
                    name: request.clone(),
                    reason: reason.clone(),
                })
                .await?;
            let response = client.reject_employee_request(req).await?.into_inner();
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
            let items = all_pages!(
                ctx,
                |token| client.list_employees(
                    ctx.request(pb::ListEmployeesRequest {
                        parent: parent.clone(),
                        program_account: program_account.clone(),
                        role,
                        page_size: 100,
                        page_token: token.clone(),
                    })
                    .await?
                ),
                members
            );
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
            let req = ctx
                .request(pb::GetMemberRequest {
                    name: member.clone(),
                })
                .await?;
            let member = client.get_member(req).await?.into_inner();
            emit(ctx, &member, print_member);
        }
        EmployeeCommand::Roles { member, grants } => {
            let bn9 = parse::owner_of(member)?;
            let grants = parse::grants(&bn9, grants)?;
            let req = ctx
                .request(pb::GetMemberRequest {
                    name: member.clone(),
                })
                .await?;
            let current = client.get_member(req).await?.into_inner();
            let req = ctx
                .request(pb::SetMemberRolesRequest {
                    request_id: ctx.request_id(),
                    name: member.clone(),
                    grants: Some(grants),
                    etag: current.etag,
                })
                .await?;
            let response = client.set_member_roles(req).await?.into_inner();
            emit(ctx, &response, |r| {
                if r.removed {
                    println!("{member} has no role left and was removed");
                } else if let Some(m) = &r.member {
                    print_member(m);
                }
            });
        }
        EmployeeCommand::Remove { member } => {
            let req = ctx
                .request(pb::GetMemberRequest {
                    name: member.clone(),
                })
                .await?;
            let current = client.get_member(req).await?.into_inner();
            let req = ctx
                .request(pb::RemoveMemberRequest {
                    request_id: ctx.request_id(),
                    name: member.clone(),
                    etag: current.etag,
                })
                .await?;
            let response = client.remove_member(req).await?.into_inner();
            emit(ctx, &response, |_| println!("removed {member}"));
        }
    }
    Ok(())
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

pub(super) async fn group(ctx: &mut Ctx, args: &GroupArgs) -> Result<(), CliError> {
    let mut client = AccountsClient::new(ctx.channel().await?);
    match &args.command {
        GroupCommand::Create {
            business,
            name,
            grants,
        } => {
            let bn9 = parse::bn9(business)?;
            let roles = group_roles(&bn9, grants)?;
            let req = ctx
                .request(pb::CreateEmployeeGroupRequest {
                    request_id: ctx.request_id(),
                    parent: format!("businesses/{bn9}"),
                    group: Some(pb::EmployeeGroup {
                        display_name: name.clone(),
                        roles,
                        ..Default::default()
                    }),
                })
                .await?;
            let response = client.create_employee_group(req).await?.into_inner();
            emit_part(ctx, &response, response.group.as_ref(), print_group);
        }
        GroupCommand::List { business, deleted } => {
            let parent = parse::business(business)?;
            let items = all_pages!(
                ctx,
                |token| client.list_employee_groups(
                    ctx.request(pb::ListEmployeeGroupsRequest {
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
            let req = ctx
                .request(pb::GetEmployeeGroupRequest {
                    name: group.clone(),
                })
                .await?;
            let group = client.get_employee_group(req).await?.into_inner();
            emit(ctx, &group, print_group);
        }
        GroupCommand::Update {
            group,
            name,
            grants,
        } => {
            let bn9 = parse::owner_of(group)?;
            let req = ctx
                .request(pb::GetEmployeeGroupRequest {
                    name: group.clone(),
                })
                .await?;
            let mut current = client.get_employee_group(req).await?.into_inner();
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
            let req = ctx
                .request(pb::UpdateEmployeeGroupRequest {
                    request_id: ctx.request_id(),
                    group: Some(current),
                    update_mask: Some(prost_types::FieldMask { paths }),
                })
                .await?;
            let response = client.update_employee_group(req).await?.into_inner();
            emit_part(ctx, &response, response.group.as_ref(), print_group);
        }
        GroupCommand::Delete { group } => {
            let req = ctx
                .request(pb::GetEmployeeGroupRequest {
                    name: group.clone(),
                })
                .await?;
            let current = client.get_employee_group(req).await?.into_inner();
            let req = ctx
                .request(pb::DeleteEmployeeGroupRequest {
                    request_id: ctx.request_id(),
                    name: group.clone(),
                    etag: current.etag,
                })
                .await?;
            let response = client.delete_employee_group(req).await?.into_inner();
            emit(ctx, &response, |_| println!("deleted {group}"));
        }
        GroupCommand::Add { group, principals } => {
            let req = ctx
                .request(pb::AddEmployeeGroupMembersRequest {
                    request_id: ctx.request_id(),
                    group: group.clone(),
                    principals: principals.iter().map(|p| parse::principal(p)).collect(),
                })
                .await?;
            let response = client.add_employee_group_members(req).await?.into_inner();
            emit_part(ctx, &response, response.group.as_ref(), print_group);
        }
        GroupCommand::Remove { group, principals } => {
            let req = ctx
                .request(pb::RemoveEmployeeGroupMembersRequest {
                    request_id: ctx.request_id(),
                    group: group.clone(),
                    principals: principals.iter().map(|p| parse::principal(p)).collect(),
                })
                .await?;
            let response = client
                .remove_employee_group_members(req)
                .await?
                .into_inner();
            emit_part(ctx, &response, response.group.as_ref(), print_group);
        }
    }
    Ok(())
}
