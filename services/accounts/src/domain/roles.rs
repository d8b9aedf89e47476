//! Roles and grants (R-AC-4): BAM > PAM > Editor > Reader; BAM is held on
//! the business, the others per program account.

use std::collections::BTreeMap;

use ccp_types::FieldViolation;

use ccp_types::{Bn9, ProgramReference};

/// A role held on a program account, ordered by power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoleLevel {
    /// View only.
    Reader = 1,
    /// Create, view, edit.
    Editor = 2,
    /// Program Account Manager.
    Pam = 3,
}

impl RoleLevel {
    /// Returns the level from its stored number.
    pub fn from_i32(n: i32) -> Option<Self> {
        match n {
            1 => Some(Self::Reader),
            2 => Some(Self::Editor),
            3 => Some(Self::Pam),
            _ => None,
        }
    }

    /// Returns the stored number (the same as `ccp.common.v1.Role`).
    pub fn as_i32(self) -> i32 {
        self as i32
    }
}

/// Roles granted to a member: BAM and a role per program reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Business Account Manager.
    pub business_manager: bool,
    /// Roles per program account.
    pub programs: BTreeMap<ProgramReference, RoleLevel>,
}

impl Grants {
    /// Returns true when nothing is granted.
    pub fn is_empty(&self) -> bool {
        !self.business_manager && self.programs.is_empty()
    }

    /// Parses raw (program BN15, role number) pairs for business `bn9`,
    /// naming fields under `field` (`grants.program_roles[i]`). A role of 4
    /// (BAM) is refused per program.
    pub fn parse(
        bn9: &Bn9,
        business_manager: bool,
        roles: &[(String, i32)],
        field: &str,
    ) -> Result<Self, Vec<FieldViolation>> {
        let mut errs = Vec::new();
        let mut programs = BTreeMap::new();
        for (i, (program, role)) in roles.iter().enumerate() {
            let f = format!("{field}[{i}]");
            match ccp_types::ProgramAccountRef::parse(program, &format!("{f}.program_account")) {
                Ok(bn15) if bn15.bn9() != bn9 => errs.push(FieldViolation::new(
                    format!("{f}.program_account"),
                    "is not a program account of this business",
                )),
                Ok(bn15) => match RoleLevel::from_i32(*role) {
                    Some(level) => {
                        if programs.insert(bn15.reference().clone(), level).is_some() {
                            errs.push(FieldViolation::new(
                                format!("{f}.program_account"),
                                "is listed more than once",
                            ));
                        }
                    }
                    None => errs.push(FieldViolation::new(
                        format!("{f}.role"),
                        "must be PAM, Editor or Reader",
                    )),
                },
                Err(v) => errs.push(v),
            }
        }
        if errs.is_empty() {
            Ok(Self {
                business_manager,
                programs,
            })
        } else {
            Err(errs)
        }
    }

    /// Refuses what a machine credential may not hold (BAM, PAM).
    pub fn check_for_credential(&self, field: &str) -> Result<(), Vec<FieldViolation>> {
        let mut errs = Vec::new();
        if self.business_manager {
            errs.push(FieldViolation::new(
                format!("{field}.business_manager"),
                "a machine credential may not be a BAM",
            ));
        }
        if self.programs.values().any(|r| *r == RoleLevel::Pam) {
            errs.push(FieldViolation::new(
                format!("{field}.program_roles"),
                "a machine credential may hold only Editor or Reader",
            ));
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

/// Returns the effective roles: the highest per program of all `sources` (R-AC-4).
pub fn effective<'a>(
    sources: impl IntoIterator<Item = (&'a ProgramReference, RoleLevel)>,
) -> BTreeMap<ProgramReference, RoleLevel> {
    let mut out: BTreeMap<ProgramReference, RoleLevel> = BTreeMap::new();
    for (p, r) in sources {
        let e = out.entry(p.clone()).or_insert(r);
        if r > *e {
            *e = r;
        }
    }
    out
}
