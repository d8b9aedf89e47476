//! Authorization commands: check, accessible, explain.

use crate::client::lang;
use std::path::PathBuf;

use ccp_proto::gateway::v1 as pb;
use ccp_proto::gateway::v1::authorization_client::AuthorizationClient;
use clap::Args;

use super::output::{self, Table, enum_name, print_fields};
use super::{CliError, ClientOptions, Ctx, emit, emit_list, parse};

/// `ccp check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub(super) options: ClientOptions,
    /// view, edit or manage.
    action: String,
    /// A business (BN9) or a program account (BN15).
    resource: String,
    /// The BN9 that submitted the transaction concerned (VIEW/EDIT of a transaction).
    #[arg(long, value_name = "BN9")]
    submitted_by: Option<String>,
    /// Asks about this principal instead of yourself (needs MANAGE on the resource).
    #[arg(long)]
    principal: Option<String>,
    /// A revision token from a write: the answer uses facts at least that fresh.
    #[arg(long)]
    revision: Option<String>,
}

/// `ccp accessible`.
#[derive(Debug, Args)]
pub struct AccessibleArgs {
    #[command(flatten)]
    pub(super) options: ClientOptions,
    /// view, edit or manage.
    action: String,
    /// Asks about this principal instead of yourself.
    #[arg(long)]
    principal: Option<String>,
    /// A revision token from a write.
    #[arg(long)]
    revision: Option<String>,
}

/// `ccp explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub(super) options: ClientOptions,
    /// The principal asked about (`person:<uuid>` or `credential:<uuid>`).
    principal: String,
    /// view, edit or manage.
    action: String,
    /// A business (BN9) or a program account (BN15).
    resource: String,
    /// The BN9 that submitted the transaction concerned.
    #[arg(long, value_name = "BN9")]
    submitted_by: Option<String>,
    /// The data directory of `ccp up` (its internal key); or set CCP_INTERNAL_AUTH__KEY.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

fn decision_words(r: &pb::CheckResponse) -> (bool, String) {
    let allowed = r.decision() == pb::Decision::Allow;
    let reason = if allowed {
        enum_name(r.allow_reason().as_str_name(), "ALLOW_REASON_")
    } else {
        enum_name(r.deny_reason().as_str_name(), "DENY_REASON_")
    };
    (allowed, reason)
}

pub(super) async fn check(ctx: &mut Ctx, args: &CheckArgs) -> Result<(), CliError> {
    let mut client = AuthorizationClient::new(ctx.channel().await?);
    let item = pb::CheckItem {
        action: parse::action(&args.action)? as i32,
        resource: args.resource.trim().to_uppercase(),
        submitted_by: args
            .submitted_by
            .as_deref()
            .map(parse::bn9)
            .transpose()?
            .unwrap_or_default(),
    };
    let response = ctx
        .call(
            pb::CheckRequest {
                principal: args
                    .principal
                    .as_deref()
                    .map(parse::principal)
                    .unwrap_or_default(),
                item: Some(item),
                revision: args.revision.clone().unwrap_or_default(),
            },
            async |r| client.check(r).await,
        )
        .await?;
    let (allowed, reason) = decision_words(&response);
    emit(ctx, &response, |_| {
        if allowed {
            println!("{}", lang::tf("allow-because", &[("reason", &reason)]));
        } else if reason == "-" {
            println!("{}", lang::t("deny"));
        } else {
            println!("{}", lang::tf("deny-because", &[("reason", &reason)]));
        }
    });
    if allowed {
        Ok(())
    } else {
        Err(CliError::Denied)
    }
}

pub(super) async fn accessible(ctx: &mut Ctx, args: &AccessibleArgs) -> Result<(), CliError> {
    let mut client = AuthorizationClient::new(ctx.channel().await?);
    let action = parse::action(&args.action)? as i32;
    let principal = args
        .principal
        .as_deref()
        .map(parse::principal)
        .unwrap_or_default();
    let revision = args.revision.clone().unwrap_or_default();
    let items = ctx
        .list(
            pb::ListAccessibleRequest {
                principal: principal.clone(),
                action,
                revision: revision.clone(),
                ..Default::default()
            },
            async |r| client.list_accessible(r).await,
        )
        .await?;
    emit_list(ctx, &items, |items| {
        let mut table = Table::new(&["RESOURCE", "ROLE", "REASON", "VIA PROVIDER"]);
        for r in items {
            table.row(vec![
                r.resource.clone(),
                enum_name(r.role().as_str_name(), "ROLE_"),
                enum_name(r.reason().as_str_name(), "ALLOW_REASON_"),
                r.via_provider.clone(),
            ]);
        }
        table.print();
    });
    Ok(())
}

pub(super) async fn explain(ctx: &mut Ctx, args: &ExplainArgs) -> Result<(), CliError> {
    let settings =
        crate::suite_state::settings_for_suite(ctx.settings(), args.data_dir.as_deref())?;
    let tokens = settings.internal_tokens().map_err(|err| {
        CliError::usage(format!(
            "explain needs the internal key (--data-dir of `ccp up`, or CCP_INTERNAL_AUTH__KEY): {err:#}"
        ))
    })?;
    let mut client = AuthorizationClient::new(ctx.channel().await?);
    let mut request = tonic::Request::new(pb::ExplainRequest {
        principal: parse::principal(&args.principal),
        item: Some(pb::CheckItem {
            action: parse::action(&args.action)? as i32,
            resource: args.resource.trim().to_uppercase(),
            submitted_by: args
                .submitted_by
                .as_deref()
                .map(parse::bn9)
                .transpose()?
                .unwrap_or_default(),
        }),
    });
    let token = tokens.mint("platform:ccp-explain");
    request.metadata_mut().insert(
        ccp_platform::auth::INTERNAL_TOKEN_HEADER,
        token
            .parse()
            .map_err(|_| CliError::Other(anyhow::anyhow!("the internal token is not ASCII")))?,
    );
    let response = client.explain(request).await?.into_inner();
    emit(ctx, &response, |r| {
        let decision = r.decision.unwrap_or_default();
        let (allowed, reason) = decision_words(&decision);
        print_fields(&[
            (
                "decision",
                if allowed {
                    "ALLOW".into()
                } else {
                    "DENY".into()
                },
            ),
            ("reason", reason),
            ("explanation", r.explanation.clone()),
        ]);
        if let Some(facts) = &r.role_facts {
            println!("{}", lang::t("role-facts"));
            output::print_json(&output::to_json(facts));
        }
        for pair in &r.pair_facts {
            println!("{}", lang::t("relationship-facts"));
            output::print_json(&output::to_json(pair));
        }
        if let Some(facts) = &r.assignment_facts {
            println!("{}", lang::t("assignment-facts"));
            output::print_json(&output::to_json(facts));
        }
    });
    Ok(())
}
