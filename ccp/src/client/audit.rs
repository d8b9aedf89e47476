//! `ccp audit export`: a business's audit history from identity (machine
//! credentials), accounts (registration, employees, roles, groups) and
//! delegation (requests, relationships, client groups, assignments), merged
//! by time — or your own profile and session history with `--mine`.

use crate::client::lang;
use std::io::Write as _;
use std::path::PathBuf;

use ccp_proto::accounts::v1::accounts_client::AccountsClient;
use ccp_proto::common::v1::AuditEvent;
use ccp_proto::delegation::v1::delegation_client::DelegationClient;
use ccp_proto::identity::v1::identity_client::IdentityClient;
use clap::{Args, ValueEnum};

use super::output::{self, Table, time};
use super::{CliError, ClientOptions, Ctx, parse};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

/// `ccp audit export`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub(super) options: ClientOptions,
    /// Must be `export`.
    #[arg(value_parser = ["export"])]
    verb: String,
    /// The business (BN9); omit with --mine.
    #[arg(required_unless_present = "mine", conflicts_with = "mine")]
    business: Option<String>,
    /// Your own profile and session history instead.
    #[arg(long)]
    mine: bool,
    /// The output format (`--json` is the same as `--format json`).
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Only records at or after this date or RFC 3339 instant.
    #[arg(long)]
    since: Option<String>,
    /// Writes to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

macro_rules! audit_of {
    ($ctx:expr, $client:ident, $module:ident, $parent:expr, $since:expr) => {
        $ctx.list(
            ccp_proto::$module::v1::ListAuditEventsRequest {
                parent: $parent,
                page_size: 500,
                start_time: $since,
                ..Default::default()
            },
            async |r| $client.list_audit_events(r).await,
        )
        .await?
    };
}

/// Returns the CSV text (RFC 4180, the `csv` crate) of a header and rows.
fn csv_text(header: &[&str], rows: &[Vec<String>]) -> Result<String, CliError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let fail = |err: csv::Error| CliError::Other(err.into());
    writer.write_record(header).map_err(fail)?;
    for row in rows {
        writer.write_record(row).map_err(fail)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|err| CliError::Other(anyhow::anyhow!("write CSV: {err}")))?;
    String::from_utf8(bytes).map_err(|err| CliError::Other(err.into()))
}

fn rfc3339(event: &AuditEvent) -> String {
    event
        .time
        .as_ref()
        .and_then(|t| {
            chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
        })
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

pub(super) async fn export(ctx: &mut Ctx, args: &AuditArgs) -> Result<(), CliError> {
    let since = args.since.as_deref().map(parse::since).transpose()?;
    let channel = ctx.channel().await?;
    let mut events: Vec<(&'static str, AuditEvent)> = Vec::new();
    if args.mine {
        let mut identity = IdentityClient::new(channel);
        let items = audit_of!(ctx, identity, identity, "profiles/me".to_owned(), since);
        events.extend(items.into_iter().map(|e| ("identity", e)));
    } else {
        let parent = parse::business(args.business.as_deref().unwrap_or_default())?;
        let mut identity = IdentityClient::new(channel.clone());
        let items = audit_of!(ctx, identity, identity, parent.clone(), since);
        events.extend(items.into_iter().map(|e| ("identity", e)));
        let mut accounts = AccountsClient::new(channel.clone());
        let items = audit_of!(ctx, accounts, accounts, parent.clone(), since);
        events.extend(items.into_iter().map(|e| ("accounts", e)));
        let mut delegation = DelegationClient::new(channel);
        let items = audit_of!(ctx, delegation, delegation, parent.clone(), since);
        events.extend(items.into_iter().map(|e| ("delegation", e)));
    }
    events.sort_by_key(|(_, e)| e.time.as_ref().map(|t| (t.seconds, t.nanos)));

    let format = if ctx.json() {
        Format::Json
    } else {
        args.format
    };
    let text = match format {
        Format::Json => {
            let list: Vec<_> = events
                .iter()
                .map(|(service, event)| {
                    let mut json = output::to_json(event);
                    if let Some(object) = json.as_object_mut() {
                        object.insert("service".into(), (*service).into());
                    }
                    json
                })
                .collect();
            let mut text =
                serde_json::to_string_pretty(&list).map_err(|err| CliError::Other(err.into()))?;
            text.push('\n');
            text
        }
        Format::Csv => {
            let rows: Vec<Vec<String>> = events
                .iter()
                .map(|(service, e)| {
                    vec![
                        rfc3339(e),
                        (*service).to_owned(),
                        e.actor.clone(),
                        e.acting_for.clone(),
                        e.action.clone(),
                        e.target.clone(),
                        e.request_id.clone(),
                        e.trace_id.clone(),
                        e.before_json.clone(),
                        e.after_json.clone(),
                    ]
                })
                .collect();
            csv_text(
                &[
                    "time",
                    "service",
                    "actor",
                    "acting_for",
                    "action",
                    "target",
                    "request_id",
                    "trace_id",
                    "before_json",
                    "after_json",
                ],
                &rows,
            )?
        }
        Format::Table => {
            let mut table = Table::new(&["TIME", "SERVICE", "ACTOR", "ACTION", "TARGET"]);
            for (service, e) in &events {
                table.row(vec![
                    time(e.time.as_ref()),
                    (*service).to_owned(),
                    e.actor.clone(),
                    e.action.clone(),
                    e.target.clone(),
                ]);
            }
            table.render()
        }
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text.as_bytes())?;
            if !ctx.json() {
                eprintln!(
                    "{}",
                    lang::tf(
                        "wrote-records",
                        &[
                            ("count", &events.len().to_string()),
                            ("path", &path.display().to_string())
                        ]
                    )
                );
            }
        }
        None => {
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_separators_are_quoted() {
        #![allow(clippy::unwrap_used)]
        let rows = vec![vec![
            "plain".to_owned(),
            "a,b".to_owned(),
            "say \"hi\"".to_owned(),
            "{\"a\":1}".to_owned(),
        ]];
        assert_eq!(
            csv_text(&["w", "x", "y", "z"], &rows).unwrap(),
            "w,x,y,z\nplain,\"a,b\",\"say \"\"hi\"\"\",\"{\"\"a\"\":1}\"\n"
        );
    }
}
