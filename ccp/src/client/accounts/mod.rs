//! Accounts commands: terms, business registration, employees, employee groups.

mod business;
mod employees;
mod groups;

use ccp_proto::common::v1::ProgramRole;

use super::output::enum_name;

pub use business::{BusinessArgs, TermsArgs};
pub(super) use business::{business, terms};
pub use employees::EmployeeArgs;
pub(super) use employees::employee;
pub use groups::GroupArgs;
pub(super) use groups::group;

/// Returns a member's or group's roles as `bam editor:RM0001 …` (`-` for none).
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
