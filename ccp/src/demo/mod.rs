//! `ccp up --demo` and `ccp demo load`: the registration guide's cast, loaded
//! into a running suite through the real RPCs.
//!
//! The demo registry (`deploy/demo/registry.json`, embedded in the binary) is
//! imported through accounts' internal ImportRegistry with an internal token;
//! everything else goes through the GATEWAY as the people themselves:
//! development-issuer ID tokens exchanged with SignIn, CreateProfile,
//! RegisterBusiness, employee requests and approvals, and ITN Logistics'
//! relationship request to ABC Windows & Doors, sent before ABC registered.
//!
//! Every write carries a fixed request id (`demo-<step>`), so loading twice —
//! or a second `ccp up --demo` on the same data directory — replays the first
//! results instead of doing the work again.

mod loader;

use std::time::Duration;

use anyhow::Context as _;

use crate::settings::SuiteSettings;

pub use loader::{Loaded, Loader, endpoint_of};

/// The demo registry records (`deploy/demo/registry.json`), built into the binary.
pub const REGISTRY_JSON: &str = include_str!("../../../deploy/demo/registry.json");

/// ABC Windows & Doors Inc., the importer of the guide.
pub const ABC: &str = "123456782";

/// ITN Logistics Inc., the customs broker of the guide.
pub const ITN: &str = "888316171";

/// The longest wait for the suite to settle (delegation learning of a
/// registration, the gateway's facts catching up with a write).
const SETTLE: Duration = Duration::from_secs(20);

/// The deadline of each call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One person of the demo cast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    /// The development issuer's user name (`ccp login --dev <user>`).
    pub user: &'static str,
    /// The profile's legal name.
    pub legal_name: &'static str,
    /// The profile's e-mail.
    pub email: &'static str,
    /// Who the person is in the story.
    pub role: &'static str,
}

/// ITN Logistics' Business Account Manager; registered ITN and sent the request to ABC.
pub const IVAN: Actor = Actor {
    user: "ivan",
    legal_name: "Ivan Novak",
    email: "ivan.novak@itnlogistics.example",
    role: "BAM of ITN Logistics (888316171), the customs broker; sent ABC a relationship request before ABC registered",
};
/// An ITN Logistics employee (broker employee), Editor on ITN's RM0001.
pub const IDA: Actor = Actor {
    user: "ida",
    legal_name: "Ida Marchetti",
    email: "ida.marchetti@itnlogistics.example",
    role: "ITN Logistics broker employee: Editor on 888316171RM0001",
};
/// ABC's first Business Account Manager; registered ABC.
pub const ALICE: Actor = Actor {
    user: "alice",
    legal_name: "Alice Martin",
    email: "alice.martin@abcwindows.example",
    role: "BAM of ABC Windows & Doors (123456782); registered it",
};
/// ABC's second Business Account Manager.
pub const BOB: Actor = Actor {
    user: "bob",
    legal_name: "Bob Tremblay",
    email: "bob.tremblay@abcwindows.example",
    role: "second BAM of ABC Windows & Doors",
};
/// ABC's Program Account Manager of RM0002 (ABC Doors).
pub const PAULA: Actor = Actor {
    user: "paula",
    legal_name: "Paula Singh",
    email: "paula.singh@abcwindows.example",
    role: "PAM of 123456782RM0002 (ABC Doors)",
};
/// An ABC employee with a pending access request.
pub const ERIN: Actor = Actor {
    user: "erin",
    legal_name: "Erin Roy",
    email: "erin.roy@abcwindows.example",
    role: "ABC employee, access request pending",
};
/// Another ABC employee with a pending access request.
pub const FRANK: Actor = Actor {
    user: "frank",
    legal_name: "Frank Gagnon",
    email: "frank.gagnon@abcwindows.example",
    role: "ABC employee, access request pending",
};

/// The whole cast, in the order it is loaded.
pub const CAST: [Actor; 7] = [IVAN, IDA, ALICE, BOB, PAULA, ERIN, FRANK];

/// Erin's justification note.
pub const ERIN_NOTE: &str = "Hi, I need access to make corrections and adjustments";
/// Frank's justification note.
pub const FRANK_NOTE: &str = "Hi, I need access to view the monthly payables for our clients";
/// ITN's note to ABC.
pub const ITN_NOTE: &str = "ITN Logistics - Customs Services asks to act as your customs broker";

/// Prints who is who after a load, and how to sign in as each of them
/// (`login_flags` follow `ccp login --dev <user>`, e.g. `--data-dir DIR`).
pub fn print_cast(loaded: &Loaded, gateway: &str, login_flags: &str) {
    println!("Demo loaded: ABC Windows & Doors Inc. ({ABC}: RM0001 ABC Windows, RM0002 ABC Doors)");
    println!("             ITN Logistics Inc. ({ITN}), customs broker");
    println!("Cast (sign in with the command shown; the gateway is {gateway}):");
    for actor in CAST {
        let principal = loaded
            .principals
            .iter()
            .find(|(user, _)| *user == actor.user)
            .map_or("", |(_, p)| p.as_str());
        println!(
            "  {:<6} {:<14} {}",
            actor.user, actor.legal_name, actor.role
        );
        println!(
            "         ccp login --dev {}{login_flags}   # {principal}",
            actor.user
        );
    }
    println!("Pending for ABC's managers:");
    for request in &loaded.pending_employee_requests {
        println!("  employee request {request}");
    }
    println!("  relationship request {}", loaded.received_request);
}

/// Runs `ccp demo load`: loads the demo into the suite at `gateway` and
/// `accounts` (default: the configured listen addresses) and prints the cast.
pub async fn load_command(
    settings: &SuiteSettings,
    gateway: Option<String>,
    accounts: Option<String>,
) -> anyhow::Result<()> {
    let gateway = gateway.unwrap_or_else(|| endpoint_of(&settings.gateway.server.listen));
    let accounts = accounts.unwrap_or_else(|| endpoint_of(settings.accounts.server.facts_listen()));
    let loader = Loader::new(settings, &gateway, &accounts)?;
    let loaded = loader.load().await?;
    print_cast(&loaded, &gateway, &login_flags(settings));
    Ok(())
}

/// The flags `ccp login --dev` needs to find this suite's keys and gateway
/// when they are not the defaults.
fn login_flags(settings: &SuiteSettings) -> String {
    let mut flags = String::new();
    if settings.data_dir != SuiteSettings::default().data_dir {
        flags.push_str(&format!(" --data-dir {}", settings.data_dir.display()));
    }
    flags
}

/// Loads the demo into the suite `ccp up --demo` has just started and prints
/// the cast.
pub async fn up_demo(
    settings: &SuiteSettings,
    suite: &crate::embedded::Suite,
) -> anyhow::Result<()> {
    let endpoints = suite.endpoints();
    let gateway = format!("http://{}", endpoints.gateway);
    let loader = Loader::new(
        settings,
        &gateway,
        &format!("http://{}", endpoints.accounts_facts),
    )?;
    println!("Loading the demo (the guide's cast) through {gateway} ...");
    let loaded = loader.load().await.context("loading the demo")?;
    let mut flags = login_flags(settings);
    if gateway != endpoint_of(&SuiteSettings::default().gateway.server.listen) {
        flags.push_str(&format!(" --gateway {gateway}"));
    }
    print_cast(&loaded, &gateway, &flags);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_embedded_registry_holds_the_guide_businesses() {
        let records = crate::registry_cmd::records_from_json(REGISTRY_JSON).unwrap();
        let abc = records.iter().find(|r| r.bn9 == ABC).unwrap();
        assert_eq!(abc.program_accounts.len(), 2);
        assert!(records.iter().any(|r| r.bn9 == ITN));
        let users: std::collections::BTreeSet<_> = CAST.iter().map(|a| a.user).collect();
        assert_eq!(users.len(), CAST.len(), "cast user names are unique");
    }
}
