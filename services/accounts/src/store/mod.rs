//! Typed persistence of accounts: one sea-orm entity per table (under
//! [`entity`]), repositories on the query builder, one file per area, and
//! the set-based facts statements kept as SQL. Rows leave here as plain
//! structs; models never do.

mod businesses;
pub mod entity;
mod facts;
mod groups;
mod members;
pub mod migration;
mod registration;
mod registry;
mod requests;

pub use businesses::{
    BusinessRow, BusinessView, LinkedProgramRow, business, business_view, count_bams,
    insert_business, link_program, programs,
};
pub use facts::{
    BusinessFactsRow, FactsRow, GroupFactsRow, ManyBusinessFactsRow, business_facts,
    business_facts_many, group_facts, revisions_of, role_facts,
};
pub use groups::{
    GroupRow, add_group_member, group, group_members, group_roles, list_groups,
    remove_group_member, set_group_roles, upsert_group,
};
pub use members::{
    MemberFilter, MemberGroupRow, MemberRow, RoleRow, delete_member, direct_roles,
    direct_roles_many, has_any_role, list_members, member, member_groups_many, program_managers,
    role_sources, set_direct_roles, upsert_member,
};
pub use migration::Migrator;
pub use registration::{
    ALL_BNS, FailureCounts, RegistrationLock, lock_registration, locked_until, record_failure,
};
pub use registry::{
    FactRow, ProgramRow, RegistryRow, registry, registry_facts, registry_programs, upsert_registry,
};
pub use requests::{
    RequestRow, decide_request, expired_pending, insert_request, list_requests, request,
};
