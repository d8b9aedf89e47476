//! The policy table in words: each row's requirements rendered into the
//! prose of `docs/policy.md`. Nothing here is written per RPC; a row reads
//! as its requirements say.

use super::require::{Place, Require};
use super::{POLICY, Policy};
use crate::decide::Action;

/// Returns what the row of `R` needs, in words.
pub fn row<R: Policy>() -> String {
    all(R::requirements(), "; ")
}

fn all<R>(requirements: &[Require<R>], separator: &str) -> String {
    requirements
        .iter()
        .map(requirement)
        .collect::<Vec<_>>()
        .join(separator)
}

/// Returns one requirement in words.
fn requirement<R>(requirement: &Require<R>) -> String {
    match requirement {
        Require::Itself(what) => (*what).to_owned(),
        Require::Act(Action::View, place) => {
            format!(
                "VIEW {} (any member; an active provider)",
                place_words(place)
            )
        }
        Require::Act(action, place) => format!("{} {} (BAM)", action.as_str(), place_words(place)),
        Require::SomeProgram(place) => {
            format!("BAM, or PAM of a program of {}", place_words(place))
        }
        Require::ManageProgramIfSet(field) => format!("MANAGE `{}` when set", field.name),
        Require::ManageEachProgram(list) => format!("MANAGE each program of `{}`", list.name),
        Require::ManageEachProgramRole(list) => {
            format!("MANAGE each program of `{}`", list.name)
        }
        Require::ManageBusinessIf(place, flag) => format!(
            "MANAGE {} (BAM) when `{}` is set",
            place_words(place),
            flag.name
        ),
        Require::ManageBusinessIfCredential { group, principals } => format!(
            "MANAGE the business of `{}` (BAM) when one of `{}` is a machine credential",
            group.name, principals.name
        ),
        Require::ManageMember(field) => format!(
            "MANAGE every program the member `{}` holds now (read from accounts' role facts), \
             and its business (BAM) when the member is a BAM or a machine credential",
            field.name
        ),
        Require::ManageEmployeeGroup(field) => format!(
            "MANAGE the business of `{}` (BAM) or every program the group covers now \
             (read from accounts' group facts: PAM); an unknown group or one covering \
             no program: BAM only",
            field.name
        ),
        Require::RejectRelationshipRequest(field) => format!(
            "MANAGE the client of `{}` (BAM); or, when the request (read from delegation's \
             request facts) names program accounts, MANAGE every one of them (PAM); an \
             unknown request: BAM only",
            field.name
        ),
        Require::Either {
            when,
            then,
            otherwise,
        } => format!(
            "when {}: {}; otherwise: {}",
            when.words,
            all(then, ", and "),
            all(otherwise, ", and ")
        ),
    }
}

/// Returns where a place finds its business, in words.
fn place_words<R>(place: &Place<R>) -> String {
    match place {
        Place::Business(field, "") => format!("`{}`", field.name),
        Place::Business(field, who) => format!("`{}`, the {who}", field.name),
        Place::Child { field, who: "", .. } | Place::Member(field) => {
            format!("the business of `{}`", field.name)
        }
        Place::Child { field, who, .. } => format!("the {who} of `{}`", field.name),
    }
}

/// Renders the table as Markdown (`docs/policy.md`).
pub fn render_markdown() -> String {
    let mut out = String::from(
        "# Gateway policy table\n\n\
         Generated from the rows of `services/gateway/src/policy/table.rs` by the test \
         `policy::tests::docs_policy_md_is_up_to_date`; do not edit by hand. The needs \
         are the rows' requirements in words (`services/gateway/src/policy/words.rs`).\n\n\
         Every public RPC is admitted by one rule. `anonymous`: no token needed. \
         `self`: a signed-in person with a profile acting on itself (R-AZ-0); \
         a session without a profile may only call CreateProfile (R-ID-2), and \
         its other self-service calls answer FAILED_PRECONDITION (create the \
         profile first). \
         `checked`: every need listed must be allowed by the decision function \
         (R-AZ-1..6) from role and relationship facts; several needs must all \
         hold. Anything else is denied. A denied call answers a bare \
         PERMISSION_DENIED.\n\n\
         `write decided on` (writes only, R-GW-1): `its own facts, checked in the write` — \
         the forwarded write carries the revisions of the facts the gateway decided on, and \
         the service refuses it (ABORTED, FACTS_CHANGED) when the business moved past them \
         before it landed; the gateway then decides again on fresher facts. `accounts' facts` — \
         decided on accounts' role facts while another service writes: a role change landing \
         after the decision takes effect from the next call. `no facts` — the caller acts on itself.\n\n\
         | service | RPC | rule | needs | write decided on |\n|---|---|---|---|---|\n",
    );
    for e in POLICY {
        let service = e.service.rsplit('.').next().unwrap_or(e.service);
        out.push_str(&format!(
            "| {service} | {} | {} | {} | {} |\n",
            e.method,
            e.rule.as_str(),
            (e.needs)().replace('|', "\\|"),
            e.writes.map_or("", super::Writes::as_str)
        ));
    }
    out
}
