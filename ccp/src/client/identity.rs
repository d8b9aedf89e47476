//! Identity commands: login, logout, whoami, profile, machine credentials.

use std::path::PathBuf;
use std::time::Duration;

use ccp_proto::identity::v1 as pb;
use ccp_proto::identity::v1::identity_client::IdentityClient;
use clap::{Args, Subcommand};

use super::lang;
use super::output::{self, Table, print_fields, time};
use super::session::{SessionFile, SessionKind};
use super::{CliError, ClientOptions, Ctx, emit, emit_list, parse, read_text_file};

/// `ccp login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub(super) options: ClientOptions,
    /// Signs in as this test user of the development issuer (`ccp up`).
    #[arg(long, value_name = "USER", conflicts_with_all = ["id_token_file", "client_id"])]
    dev: Option<String>,
    /// The data directory of `ccp up`, where the development issuer's key is.
    #[arg(long, value_name = "DIR", requires = "dev")]
    data_dir: Option<PathBuf>,
    /// A file holding an ID token from a trusted issuer (`-` for stdin).
    #[arg(long, value_name = "FILE", conflicts_with = "client_id")]
    id_token_file: Option<PathBuf>,
    /// A machine credential's client id.
    #[arg(long, value_name = "ID", requires = "client_secret_file")]
    client_id: Option<String>,
    /// A file holding the machine credential's secret (`-` for stdin).
    #[arg(long, value_name = "FILE", requires = "client_id")]
    client_secret_file: Option<PathBuf>,
}

/// `ccp logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    pub(super) options: ClientOptions,
}

/// `ccp whoami`.
#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    pub(super) options: ClientOptions,
}

/// `ccp profile …`.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    #[command(flatten)]
    pub(super) options: ClientOptions,
    #[command(subcommand)]
    command: ProfileCommand,
}

#[derive(Debug, Subcommand)]
enum ProfileCommand {
    /// Creates your profile (once, after the first sign-in).
    ///
    /// Example: ccp profile create --legal-name "Alice Martin" --email alice.martin@abcwindows.example
    Create {
        /// Your legal name.
        #[arg(long)]
        legal_name: String,
        /// Your email address.
        #[arg(long)]
        email: String,
        /// Your phone number.
        #[arg(long, default_value = "")]
        phone: String,
        /// Your preferred language (default: `--language`, else English); notices and
        /// `ccp`'s output use it.
        #[arg(long, value_enum)]
        preferred_language: Option<lang::Language>,
        /// Sends you email notifications.
        #[arg(long)]
        email_notifications: bool,
        /// Turns one kind of notice on or off whatever --email-notifications says (repeatable;
        /// the kinds are listed in `ccp profile update --help`).
        #[arg(long = "notify", value_name = "KIND=on|off", value_parser = notice_choice)]
        notify: Vec<(String, bool)>,
    },
    /// Shows your profile.
    ///
    /// Example: ccp profile show
    Show,
    /// Changes the fields given.
    ///
    /// A kind of notice without a choice follows --email-notifications. The kinds:
    /// relationship-request-received, relationship-request-approved,
    /// relationship-request-rejected, relationship-ended, relationship-expired,
    /// relationship-expiry-reminder, employee-request-received, employee-request-approved,
    /// employee-request-rejected, credential-expiry-reminder.
    ///
    /// Example: ccp profile update --phone "+1 416 555 0100" --preferred-language fr --notify relationship-ended=off
    Update {
        /// Your legal name.
        #[arg(long)]
        legal_name: Option<String>,
        /// Your email address.
        #[arg(long)]
        email: Option<String>,
        /// Your phone number.
        #[arg(long)]
        phone: Option<String>,
        /// Your preferred language (notices and `ccp`'s output use it).
        #[arg(long, value_enum)]
        preferred_language: Option<lang::Language>,
        /// Email notifications on or off.
        #[arg(long, value_name = "true|false")]
        email_notifications: Option<bool>,
        /// Turns one kind of notice on or off (repeatable); `KIND=default` drops the choice, so
        /// the kind follows --email-notifications again.
        #[arg(long = "notify", value_name = "KIND=on|off|default", value_parser = notice_change)]
        notify: Vec<(String, Option<bool>)>,
    },
}

/// Parses `--notify KIND=on|off` (a kind of [`ccp_types::NOTICE_KINDS`]).
fn notice_choice(text: &str) -> Result<(String, bool), String> {
    match notice_change(text)? {
        (kind, Some(enabled)) => Ok((kind, enabled)),
        (_, None) => Err("must be KIND=on or KIND=off".to_owned()),
    }
}

/// Parses `--notify KIND=on|off|default`: None for `default` (no choice).
fn notice_change(text: &str) -> Result<(String, Option<bool>), String> {
    let Some((kind, value)) = text.split_once('=') else {
        return Err("must be KIND=on or KIND=off".to_owned());
    };
    if !ccp_types::is_notice_kind(kind) {
        return Err(format!(
            "`{kind}` is not a kind of notice; the kinds: {}",
            ccp_types::NOTICE_KINDS.join(", ")
        ));
    }
    let value = match value {
        "on" => Some(true),
        "off" => Some(false),
        "default" => None,
        other => return Err(format!("`{other}` must be on, off or default")),
    };
    Ok((kind.to_owned(), value))
}

/// Returns the profile's choices per kind of notice as `kind=on, kind=off`, or says that every
/// kind follows the opt-in.
fn notice_choices(profile: &pb::Profile) -> String {
    if profile.notification_choices.is_empty() {
        return lang::t("no-notice-choices");
    }
    profile
        .notification_choices
        .iter()
        .map(|c| format!("{}={}", c.kind, if c.enabled { "on" } else { "off" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ccp credential …`.
#[derive(Debug, Args)]
pub struct CredentialArgs {
    #[command(flatten)]
    pub(super) options: ClientOptions,
    #[command(subcommand)]
    command: CredentialCommand,
}

#[derive(Debug, Subcommand)]
enum CredentialCommand {
    /// Creates a machine credential; prints its client id and secret ONCE.
    ///
    /// Example: ccp credential create 888316171 --name "ITN broker system" --expires 365d
    Create {
        /// The business (BN9).
        business: String,
        /// A name people recognize.
        #[arg(long)]
        name: String,
        /// When it expires (365d, 2027-03-01, RFC 3339): every credential expires, at most 2 years on.
        #[arg(long)]
        expires: String,
        /// Also writes the secret to this file (owner-only).
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
    },
    /// Lists a business's machine credentials.
    ///
    /// Example: ccp credential list 888316171 --all
    List {
        /// The business (BN9).
        business: String,
        /// Includes expired and revoked credentials.
        #[arg(long)]
        all: bool,
    },
    /// Revokes a machine credential at once.
    ///
    /// Example: ccp credential revoke businesses/888316171/machineCredentials/0197…
    Revoke {
        /// The credential's resource name.
        credential: String,
        /// Why (kept in the audit history).
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// Converts a Session from identity into the stored form.
pub fn session_from(gateway: &str, session: &pb::Session) -> SessionFile {
    let instant = |ts: Option<&prost_types::Timestamp>| {
        ts.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
    };
    SessionFile {
        gateway: gateway.to_owned(),
        kind: SessionKind::Person,
        principal: session.principal.clone(),
        profile: session.profile.clone(),
        business: String::new(),
        access_token: session.access_token.clone(),
        access_expire_time: instant(session.access_token_expire_time.as_ref()).unwrap_or_default(),
        refresh_token: session.refresh_token.clone(),
        refresh_expire_time: instant(session.refresh_token_expire_time.as_ref()),
        language: None,
    }
}

fn session_json(session: &SessionFile) -> serde_json::Value {
    serde_json::json!({
        "principal": session.principal,
        "profile": session.profile,
        "profileRequired": session.kind == SessionKind::Person && session.profile.is_empty(),
        "business": session.business,
        "kind": session.kind,
        "gateway": session.gateway,
        "accessTokenExpireTime": session.access_expire_time.to_rfc3339(),
    })
}

fn print_session(ctx: &Ctx, session: &SessionFile, verb: &str) {
    if ctx.json() {
        output::print_json(&session_json(session));
        return;
    }
    if ctx.quiet() {
        println!("{}", session.principal);
        return;
    }
    println!(
        "{}",
        lang::tf(
            verb,
            &[
                ("principal", &session.principal),
                ("gateway", &session.gateway)
            ]
        )
    );
    if session.kind == SessionKind::Machine {
        println!(
            "{}",
            lang::tf("acting-for-business", &[("business", &session.business)])
        );
    } else if session.profile.is_empty() {
        println!("{}", lang::t("no-profile-yet"));
    } else {
        println!(
            "{}",
            lang::tf("profile-is", &[("profile", &session.profile)])
        );
    }
}

pub(super) async fn login(ctx: &mut Ctx, args: &LoginArgs) -> Result<(), CliError> {
    ctx.sign_in_at_the_running_suite();
    // The development token first: without a suite there is nothing to call.
    let dev_token = match &args.dev {
        Some(user) => Some(crate::identity_cmd::dev_token(
            ctx.settings(),
            args.data_dir.as_deref(),
            user,
            Duration::from_secs(300),
        )?),
        None => None,
    };
    let gateway = ctx.gateway_url();
    let mut client = IdentityClient::new(ctx.channel().await?);
    let session = if let Some(client_id) = &args.client_id {
        let secret_file = args
            .client_secret_file
            .as_ref()
            .ok_or_else(|| CliError::usage("--client-secret-file is required"))?;
        let secret = read_text_file(secret_file)?;
        let token = client
            .issue_machine_token(pb::IssueMachineTokenRequest {
                client_id: client_id.clone(),
                client_secret: secret,
            })
            .await?
            .into_inner();
        SessionFile {
            gateway,
            kind: SessionKind::Machine,
            principal: token.principal,
            profile: String::new(),
            business: token.business,
            access_token: token.access_token,
            access_expire_time: token
                .expire_time
                .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
                .unwrap_or_default(),
            refresh_token: String::new(),
            refresh_expire_time: None,
            language: None,
        }
    } else {
        let id_token = if let Some(token) = dev_token {
            token
        } else if let Some(file) = &args.id_token_file {
            read_text_file(file)?
        } else {
            return Err(CliError::usage(
                "say how to sign in: --dev USER, --id-token-file FILE, or --client-id ID --client-secret-file FILE",
            ));
        };
        let session = client
            .sign_in(pb::SignInRequest { id_token })
            .await?
            .into_inner();
        session_from(&gateway, &session)
    };
    let person_with_profile = session.kind == SessionKind::Person && !session.profile.is_empty();
    ctx.store_session(session.clone())?;
    if person_with_profile {
        // The profile's language, for this command's output and the next ones'; signing in
        // does not fail for it.
        let profile = ctx
            .call(pb::GetMyProfileRequest {}, async |r| {
                client.get_my_profile(r).await
            })
            .await;
        if let Ok(profile) = profile {
            ctx.remember_language(profile.preferred_language)?;
        }
    }
    print_session(ctx, &session, "signed-in-as");
    Ok(())
}

pub(super) async fn logout(ctx: &mut Ctx) -> Result<(), CliError> {
    let Some(stored) = ctx.stored_session().cloned() else {
        if ctx.json() {
            output::print_json(&serde_json::json!({"signedOut": false}));
        } else {
            println!("{}", lang::t("not-signed-in"));
        }
        return Ok(());
    };
    if stored.kind == SessionKind::Person {
        // Revoke the session family; an already expired session is fine.
        let request_id = ctx.request_id();
        let channel = ctx.channel().await?;
        let mut request = tonic::Request::new(pb::SignOutRequest { request_id });
        if let Ok(value) = format!("Bearer {}", stored.access_token).parse() {
            request.metadata_mut().insert("authorization", value);
        }
        match IdentityClient::new(channel).sign_out(request).await {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::Unauthenticated => {}
            Err(status) => return Err(status.into()),
        }
    }
    ctx.forget_session()?;
    if ctx.json() {
        output::print_json(&serde_json::json!({"signedOut": true, "principal": stored.principal}));
    } else {
        println!(
            "{}",
            lang::tf("signed-out", &[("principal", &stored.principal)])
        );
    }
    Ok(())
}

pub(super) async fn whoami(ctx: &mut Ctx) -> Result<(), CliError> {
    if ctx.stored_session().is_none() {
        return Err(CliError::NotSignedIn(
            "not signed in: there is no session; run `ccp login`".to_owned(),
        ));
    }
    // The server says whether the session still stands (revoked, expired),
    // not the file.
    let mut client = IdentityClient::new(ctx.channel().await?);
    let mut answer = ctx
        .call(pb::GetMyProfileRequest {}, async |r| {
            client.get_my_profile(r).await
        })
        .await;
    if matches!(&answer, Err(CliError::Status(s)) if s.code() == tonic::Code::Unauthenticated)
        && !ctx.refreshed
    {
        answer = match ctx.refresh().await {
            Ok(()) => {
                ctx.call(pb::GetMyProfileRequest {}, async |r| {
                    client.get_my_profile(r).await
                })
                .await
            }
            Err(err) => Err(err),
        };
    }
    let profile = match answer {
        Ok(profile) => Some(profile),
        // Signed in; a person without a profile yet, or a machine credential.
        Err(CliError::Status(s))
            if matches!(
                s.code(),
                tonic::Code::FailedPrecondition | tonic::Code::PermissionDenied
            ) =>
        {
            None
        }
        Err(CliError::Status(s)) if s.code() == tonic::Code::Unauthenticated => {
            return Err(revoked(ctx, s.message()));
        }
        Err(CliError::NotSignedIn(message)) => return Err(revoked(ctx, &message)),
        Err(err) => return Err(err),
    };
    if let Some(profile) = &profile {
        ctx.remember_language(profile.preferred_language)?;
    }
    let Some(session) = ctx.stored_session().cloned() else {
        return Err(revoked(ctx, "the session is gone"));
    };
    if ctx.json() {
        let mut json = session_json(&session);
        if let Some(profile) = &profile {
            json["profile"] = profile.name.clone().into();
            json["profileRequired"] = false.into();
            json["legalName"] = profile.legal_name.clone().into();
        }
        output::print_json(&json);
        return Ok(());
    }
    if ctx.quiet() {
        println!("{}", session.principal);
        return Ok(());
    }
    println!(
        "{}",
        lang::tf(
            "signed-in-as",
            &[
                ("principal", &session.principal),
                ("gateway", &session.gateway)
            ]
        )
    );
    match (&profile, session.kind) {
        (Some(profile), _) => println!(
            "{}",
            lang::tf(
                "profile-of",
                &[
                    ("profile", &profile.name),
                    ("legal_name", &profile.legal_name),
                    ("email", &profile.email)
                ]
            )
        ),
        (None, SessionKind::Machine) => println!(
            "{}",
            lang::tf("acting-for-business", &[("business", &session.business)])
        ),
        (None, SessionKind::Person) => println!("{}", lang::t("no-profile-yet")),
    }
    println!(
        "{}",
        lang::tf(
            "access-token-valid-until",
            &[("time", &session.access_expire_time.to_rfc3339())]
        )
    );
    Ok(())
}

/// The answer of `whoami` when the server no longer accepts the session.
fn revoked(ctx: &Ctx, why: &str) -> CliError {
    let who = ctx
        .stored_session()
        .map(|s| s.principal.clone())
        .unwrap_or_default();
    CliError::NotSignedIn(format!(
        "not signed in: the session of {who} was revoked or has expired ({why}); run `ccp login` again"
    ))
}

fn print_profile(profile: &pb::Profile) {
    print_fields(&[
        ("name", profile.name.clone()),
        ("principal", profile.principal.clone()),
        ("legal name", profile.legal_name.clone()),
        ("email", profile.email.clone()),
        ("phone", profile.phone.clone()),
        (
            "language",
            output::enum_name(profile.preferred_language().as_str_name(), "LANGUAGE_"),
        ),
        (
            "email notifications",
            profile.email_notifications.to_string(),
        ),
        ("notice choices", notice_choices(profile)),
        ("updated", time(profile.update_time.as_ref())),
    ]);
}

pub(super) async fn profile(ctx: &mut Ctx, args: &ProfileArgs) -> Result<(), CliError> {
    let mut client = IdentityClient::new(ctx.channel().await?);
    match &args.command {
        ProfileCommand::Create {
            legal_name,
            email,
            phone,
            preferred_language,
            email_notifications,
            notify,
        } => {
            let language = preferred_language
                .or(ctx.language_flag())
                .unwrap_or_default();
            let response = ctx
                .call(
                    pb::CreateProfileRequest {
                        request_id: ctx.request_id(),
                        profile: Some(pb::Profile {
                            legal_name: legal_name.clone(),
                            email: email.clone(),
                            phone: phone.clone(),
                            preferred_language: language.proto(),
                            email_notifications: *email_notifications,
                            notification_choices: notify
                                .iter()
                                .map(|(kind, enabled)| pb::NotificationChoice {
                                    kind: kind.clone(),
                                    enabled: *enabled,
                                })
                                .collect(),
                            ..Default::default()
                        }),
                    },
                    async |r| client.create_profile(r).await,
                )
                .await?;
            if let Some(session) = &response.session {
                let gateway = ctx.gateway_url();
                ctx.store_session(session_from(&gateway, session))?;
            }
            if let Some(profile) = &response.profile {
                ctx.remember_language(profile.preferred_language)?;
            }
            emit(ctx, &response, |r| {
                println!("{}", lang::t("profile-created"));
                if let Some(profile) = &r.profile {
                    print_profile(profile);
                }
            });
        }
        ProfileCommand::Show => {
            let profile = ctx
                .call(pb::GetMyProfileRequest {}, async |r| {
                    client.get_my_profile(r).await
                })
                .await?;
            ctx.remember_language(profile.preferred_language)?;
            emit(ctx, &profile, print_profile);
        }
        ProfileCommand::Update {
            legal_name,
            email,
            phone,
            preferred_language,
            email_notifications,
            notify,
        } => {
            let mut profile = ctx
                .call(pb::GetMyProfileRequest {}, async |r| {
                    client.get_my_profile(r).await
                })
                .await?;
            let mut paths = Vec::new();
            if let Some(v) = legal_name {
                profile.legal_name.clone_from(v);
                paths.push("legal_name".to_owned());
            }
            if let Some(v) = email {
                profile.email.clone_from(v);
                paths.push("email".to_owned());
            }
            if let Some(v) = phone {
                profile.phone.clone_from(v);
                paths.push("phone".to_owned());
            }
            if let Some(v) = preferred_language {
                profile.preferred_language = v.proto();
                paths.push("preferred_language".to_owned());
            }
            if let Some(v) = email_notifications {
                profile.email_notifications = *v;
                paths.push("email_notifications".to_owned());
            }
            if !notify.is_empty() {
                // The whole list is replaced: the current choices with these changed.
                for (kind, enabled) in notify {
                    profile.notification_choices.retain(|c| &c.kind != kind);
                    if let Some(enabled) = enabled {
                        profile.notification_choices.push(pb::NotificationChoice {
                            kind: kind.clone(),
                            enabled: *enabled,
                        });
                    }
                }
                paths.push("notification_choices".to_owned());
            }
            if paths.is_empty() {
                return Err(CliError::usage(
                    "nothing to change: give --legal-name, --email, --phone, --preferred-language, --email-notifications or --notify",
                ));
            }
            let response = ctx
                .call(
                    pb::UpdateMyProfileRequest {
                        request_id: ctx.request_id(),
                        profile: Some(profile),
                        update_mask: Some(prost_types::FieldMask { paths }),
                    },
                    async |r| client.update_my_profile(r).await,
                )
                .await?;
            if let Some(profile) = &response.profile {
                ctx.remember_language(profile.preferred_language)?;
            }
            emit(ctx, &response, |r| {
                println!("{}", lang::t("profile-updated"));
                if let Some(profile) = &r.profile {
                    print_profile(profile);
                }
            });
        }
    }
    Ok(())
}

fn credential_state(c: &pb::MachineCredential) -> String {
    output::enum_name(c.state().as_str_name(), "MACHINE_CREDENTIAL_STATE_")
}

pub(super) async fn credential(ctx: &mut Ctx, args: &CredentialArgs) -> Result<(), CliError> {
    let mut client = IdentityClient::new(ctx.channel().await?);
    match &args.command {
        CredentialCommand::Create {
            business,
            name,
            expires,
            secret_file,
        } => {
            let expire_time = Some(parse::instant(ctx.now(), expires)?);
            let response = ctx
                .call(
                    pb::CreateMachineCredentialRequest {
                        request_id: ctx.request_id(),
                        parent: parse::business(business)?,
                        display_name: name.clone(),
                        expire_time,
                    },
                    async |r| client.create_machine_credential(r).await,
                )
                .await?;
            if let Some(path) = secret_file {
                super::session::save_secret(path, &response.client_secret)?;
            }
            emit(ctx, &response, |r| {
                let c = r.credential.clone().unwrap_or_default();
                print_fields(&[
                    ("credential", c.name.clone()),
                    ("principal", c.principal.clone()),
                    ("client id", c.client_id.clone()),
                    ("client secret", r.client_secret.clone()),
                    ("expires", time(c.expire_time.as_ref())),
                ]);
                println!("{}", lang::t("keep-the-secret"));
            });
        }
        CredentialCommand::List { business, all } => {
            let parent = parse::business(business)?;
            let items = ctx
                .list(
                    pb::ListMachineCredentialsRequest {
                        parent: parent.clone(),
                        show_inactive: *all,
                        ..Default::default()
                    },
                    async |r| client.list_machine_credentials(r).await,
                )
                .await?;
            emit_list(ctx, &items, |items| {
                let mut table =
                    Table::new(&["NAME", "DISPLAY NAME", "CLIENT ID", "STATE", "EXPIRES"]);
                for c in items {
                    table.row(vec![
                        c.name.clone(),
                        c.display_name.clone(),
                        c.client_id.clone(),
                        credential_state(c),
                        time(c.expire_time.as_ref()),
                    ]);
                }
                table.print();
            });
        }
        CredentialCommand::Revoke { credential, reason } => {
            let response = ctx
                .call(
                    pb::RevokeMachineCredentialRequest {
                        request_id: ctx.request_id(),
                        name: credential.clone(),
                        reason: reason.clone(),
                    },
                    async |r| client.revoke_machine_credential(r).await,
                )
                .await?;
            emit(ctx, &response, |r| {
                let c = r.credential.clone().unwrap_or_default();
                println!(
                    "{}",
                    lang::tf(
                        "credential-revoked",
                        &[("name", &c.name), ("state", &credential_state(&c))]
                    )
                );
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_reads_a_known_kind_and_on_off_or_default() {
        assert_eq!(
            notice_change("relationship-ended=off"),
            Ok(("relationship-ended".to_owned(), Some(false)))
        );
        assert_eq!(
            notice_change("credential-expiry-reminder=default"),
            Ok(("credential-expiry-reminder".to_owned(), None))
        );
        assert_eq!(
            notice_choice("employee-request-received=on"),
            Ok(("employee-request-received".to_owned(), true))
        );
        assert!(notice_choice("employee-request-received=default").is_err());
        assert!(notice_change("relationship-ended=yes").is_err());
        let unknown = notice_change("newsletter=on").err().unwrap_or_default();
        assert!(unknown.contains("credential-expiry-reminder"), "{unknown}");
        assert!(notice_change("relationship-ended").is_err());
    }
}
