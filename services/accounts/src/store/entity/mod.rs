//! One sea-orm entity per accounts table written row by row; they match
//! the tables migration m0002 creates (never edited). Models never leave
//! `store`.

pub mod business;
pub mod employee_group;
pub mod employee_request;
pub mod group_member;
pub mod group_role;
pub mod member;
pub mod member_role;
pub mod program_account;
pub mod registration_failure;
pub mod registration_lock;
pub mod registry_fact;
pub mod registry_program;
pub mod registry_record;
