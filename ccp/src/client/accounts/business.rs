//! `ccp terms` and `ccp business …`: the Terms & Conditions, registering a
//! business by one of its program accounts, and showing businesses.

use crate::client::lang;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

use ccp_proto::accounts::v1 as pb;
use ccp_proto::accounts::v1::accounts_client::AccountsClient;
use ccp_proto::common::v1::Address;
use clap::{Args, Subcommand};

use super::roles_text;
use crate::client::output::{Table, enum_name, print_fields, time};
use crate::client::{CliError, ClientOptions, Ctx, emit, emit_headed, emit_list, parse};

/// `ccp terms`.
#[derive(Debug, Args)]
pub struct TermsArgs {
    #[command(flatten)]
    pub(in crate::client) options: ClientOptions,
}

/// `ccp business …`.
#[derive(Debug, Args)]
pub struct BusinessArgs {
    #[command(flatten)]
    pub(in crate::client) options: ClientOptions,
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
    #[command(verbatim_doc_comment)]
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

pub(in crate::client) async fn terms(ctx: &mut Ctx, _args: &TermsArgs) -> Result<(), CliError> {
    let mut client = AccountsClient::new(ctx.channel().await?);
    let terms = client
        .get_terms_and_conditions(pb::GetTermsAndConditionsRequest {})
        .await?
        .into_inner();
    emit(ctx, &terms, |t| {
        println!("{}", lang::tf("terms-heading", &[("version", &t.version)]));
        println!();
        println!(
            "{}",
            match lang::current() {
                lang::Language::Fr => &t.text_fr,
                lang::Language::En => &t.text_en,
            }
        );
    });
    Ok(())
}

/// Asks `question` on the terminal and returns the trimmed answer.
/// Returns a registration question in the output's language.
fn question_text(q: &pb::KnownFactQuestion) -> &str {
    match lang::current() {
        lang::Language::Fr if !q.text_fr.is_empty() => &q.text_fr,
        _ => &q.text_en,
    }
}

fn ask(question: &str) -> Result<String, CliError> {
    eprint!("{question} ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

pub(in crate::client) async fn business(
    ctx: &mut Ctx,
    args: &BusinessArgs,
) -> Result<(), CliError> {
    let mut client = AccountsClient::new(ctx.channel().await?);
    match &args.command {
        BusinessCommand::Challenge { program_account } => {
            let challenge = ctx
                .call(
                    pb::GetRegistrationChallengeRequest {
                        program_account: program_account.trim().to_uppercase(),
                    },
                    async |r| client.get_registration_challenge(r).await,
                )
                .await?;
            emit(ctx, &challenge, |c| {
                println!(
                    "{}",
                    lang::tf(
                        "challenge-heading",
                        &[("business", &c.business), ("version", &c.terms_version)]
                    )
                );
                let mut table = Table::new(&["QUESTION ID", "FORMAT", "QUESTION"]);
                for q in &c.questions {
                    table.row(vec![
                        q.id.clone(),
                        enum_name(q.format().as_str_name(), "ANSWER_FORMAT_"),
                        question_text(q).to_owned(),
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
            let challenge = ctx
                .call(
                    pb::GetRegistrationChallengeRequest {
                        program_account: program_account.clone(),
                    },
                    async |r| client.get_registration_challenge(r).await,
                )
                .await?;
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
                    let value = ask(&format!("{} [{format}]:", question_text(q)))?;
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
                    eprintln!(
                        "{}",
                        match lang::current() {
                            lang::Language::Fr => &terms.text_fr,
                            lang::Language::En => &terms.text_en,
                        }
                    );
                    let yes = ask(&lang::tf("accept-terms", &[("version", &terms.version)]))?;
                    // Yes in either language: y, yes, o, oui.
                    if !["y", "yes", "o", "oui"]
                        .iter()
                        .any(|word| yes.eq_ignore_ascii_case(word))
                    {
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
            let response = ctx
                .call(
                    pb::RegisterBusinessRequest {
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
                    },
                    async |r| client.register_business(r).await,
                )
                .await?;
            emit_headed(
                ctx,
                &response,
                "registered-you-are-bam",
                response.business.as_ref(),
                print_business,
            );
        }
        BusinessCommand::Show { business } => {
            let business = ctx
                .call(
                    pb::GetBusinessRequest {
                        name: parse::business(business)?,
                    },
                    async |r| client.get_business(r).await,
                )
                .await?;
            emit(ctx, &business, print_business);
        }
        BusinessCommand::Programs { business } => {
            let parent = parse::business(business)?;
            let items = ctx
                .list(
                    pb::ListProgramAccountsRequest {
                        parent: parent.clone(),
                        ..Default::default()
                    },
                    async |r| client.list_program_accounts(r).await,
                )
                .await?;
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
            let items = ctx
                .list(pb::ListMyBusinessesRequest::default(), async |r| {
                    client.list_my_businesses(r).await
                })
                .await?;
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
