//! The vocabulary every CCP crate shares: business numbers (`Bn9`, `Bn15`,
//! `ProgramReference`, one Luhn), write request ids (`RequestId`), bounded
//! free text (`Note`), resource names and their parsers, the kinds of
//! e-mail notice (`notices`), and the `FieldViolation` that names a bad field.
//!
//! Values here are parsed, not validated: holding one proves it is valid, so
//! code past the edge never re-checks. This crate is plain Rust: no I/O, no
//! prost, no database, no async — services, the gateway, the `ccp` command,
//! the bench and the tests all depend on it and nothing here depends on them.

mod bn;
pub mod limits;
mod names;
pub mod notices;
mod text;
mod violation;

pub use bn::{Bn9, Bn15, ProgramReference, luhn_check_digit, luhn_valid};
pub use limits::Limits;
pub use names::{
    BusinessChild, BusinessRef, ProgramAccountRef, parse_business_child, parse_business_name,
    parse_program_account_name,
};
pub use notices::{NOTICE_KINDS, is_notice_kind};
pub use text::{Note, REQUEST_ID_MAX_CHARS, RequestId, check_line, check_multiline};
pub use violation::FieldViolation;
