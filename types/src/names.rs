//! Resource names (AIP-122): `businesses/{bn9}`,
//! `businesses/{bn9}/programAccounts/{RMnnnn}`, and the children of a business
//! `businesses/{bn9}/{collection}/{id}`.

use crate::{Bn9, Bn15, FieldViolation, ProgramReference};

/// Parses `businesses/{bn9}`, naming `field`.
pub fn parse_business_name(name: &str, field: &str) -> Result<Bn9, FieldViolation> {
    match name.strip_prefix("businesses/") {
        Some(bn) if !bn.contains('/') => Bn9::parse(bn, field),
        _ => Err(FieldViolation::new(field, "must be businesses/{bn9}")),
    }
}

/// Parses `businesses/{bn9}/programAccounts/{RMnnnn}`, naming `field`.
pub fn parse_program_account_name(name: &str, field: &str) -> Result<Bn15, FieldViolation> {
    let child = parse_business_child(name, "programAccounts", field)?;
    let reference = ProgramReference::parse(&child.id, field)?;
    Ok(Bn15::new(child.business, reference))
}

/// A request field that names a business: the resource name
/// `businesses/{bn9}` or the bare BN9 `123456782`, the same business either
/// way (R-IN-1, one vocabulary).
#[derive(Debug, Clone, Copy)]
pub struct BusinessRef;

impl BusinessRef {
    /// Returns the BN9 `text` names in either form, or a violation naming `field`.
    pub fn parse(text: &str, field: &str) -> Result<Bn9, FieldViolation> {
        if text.starts_with("businesses/") {
            parse_business_name(text, field)
        } else if text.contains('/') {
            Err(FieldViolation::new(
                field,
                "must be businesses/{bn9} or the bare BN9",
            ))
        } else {
            Bn9::parse(text, field)
        }
    }
}

/// A request field that names a program account: the resource name
/// `businesses/{bn9}/programAccounts/{RMnnnn}` or the bare BN15
/// `123456782RM0001`, the same program account either way.
#[derive(Debug, Clone, Copy)]
pub struct ProgramAccountRef;

impl ProgramAccountRef {
    /// Returns the BN15 `text` names in either form, or a violation naming `field`.
    pub fn parse(text: &str, field: &str) -> Result<Bn15, FieldViolation> {
        if text.starts_with("businesses/") {
            parse_program_account_name(text, field)
        } else if text.contains('/') {
            Err(FieldViolation::new(
                field,
                "must be businesses/{bn9}/programAccounts/{RMnnnn} or the bare BN15",
            ))
        } else {
            Bn15::parse(text, field)
        }
    }
}

/// A resource that lives under a business: `businesses/{bn9}/{collection}/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessChild {
    /// The business it lives under.
    pub business: Bn9,
    /// Its id within the collection (not empty, no `/`).
    pub id: String,
}

impl BusinessChild {
    /// Returns the id as a uuid, naming `field` when it is not one.
    pub fn uuid(&self, field: &str) -> Result<uuid::Uuid, FieldViolation> {
        uuid::Uuid::parse_str(&self.id)
            .map_err(|_| FieldViolation::new(field, "has a malformed id"))
    }
}

/// Parses `businesses/{bn9}/{collection}/{id}`, naming `field`.
pub fn parse_business_child(
    name: &str,
    collection: &str,
    field: &str,
) -> Result<BusinessChild, FieldViolation> {
    let bad = || {
        FieldViolation::new(
            field,
            format!("must be businesses/{{bn9}}/{collection}/{{id}}"),
        )
    };
    let rest = name.strip_prefix("businesses/").ok_or_else(bad)?;
    let mut parts = rest.split('/');
    let (Some(bn), Some(coll), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if coll != collection || id.is_empty() {
        return Err(bad());
    }
    Ok(BusinessChild {
        business: Bn9::parse(bn, field)?,
        id: id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("businesses/123456782", true)]
    #[case("businesses/123456789", false)]
    #[case("businesses/123456782/", false)]
    #[case("123456782", false)]
    #[case("business/123456782", false)]
    fn business_names(#[case] name: &str, #[case] valid: bool) {
        assert_eq!(parse_business_name(name, "name").is_ok(), valid, "{name}");
    }

    #[rstest]
    #[case("businesses/123456782/programAccounts/RM0001", true)]
    #[case("businesses/123456782/programAccounts/RM0000", false)]
    #[case("businesses/123456782/programAccounts/", false)]
    #[case("businesses/123456782/employeeGroups/RM0001", false)]
    #[case("businesses/123456782/programAccounts/RM0001/x", false)]
    fn program_account_names(#[case] name: &str, #[case] valid: bool) {
        assert_eq!(
            parse_program_account_name(name, "name").is_ok(),
            valid,
            "{name}"
        );
    }

    #[rstest]
    #[case("businesses/123456782", Some("123456782"))]
    #[case("123456782", Some("123456782"))]
    #[case("123456789", None)]
    #[case("businesses/123456789", None)]
    #[case("businesses/123456782/", None)]
    #[case("/123456782", None)]
    #[case("", None)]
    #[case("businesses/123456782/programAccounts/RM0001", None)]
    #[case("123456782RM0001", None)]
    fn r_in_1_a_business_is_named_by_its_resource_name_or_its_bare_bn9(
        #[case] text: &str,
        #[case] bn9: Option<&str>,
    ) {
        let parsed = BusinessRef::parse(text, "parent");
        assert_eq!(parsed.as_ref().ok().map(Bn9::as_str), bn9, "{text}");
        if let Err(v) = parsed {
            assert_eq!(v.field, "parent");
        }
    }

    #[rstest]
    #[case("businesses/123456782/programAccounts/RM0001", Some("123456782RM0001"))]
    #[case("123456782RM0001", Some("123456782RM0001"))]
    #[case("123456782RM0000", None)]
    #[case("businesses/123456782/programAccounts/RM0000", None)]
    #[case("businesses/123456782", None)]
    #[case("123456782", None)]
    #[case("123456782/RM0001", None)]
    #[case("", None)]
    fn r_in_1_a_program_account_is_named_by_its_resource_name_or_its_bare_bn15(
        #[case] text: &str,
        #[case] bn15: Option<&str>,
    ) {
        let parsed = ProgramAccountRef::parse(text, "program_account");
        assert_eq!(
            parsed.as_ref().ok().map(ToString::to_string).as_deref(),
            bn15,
            "{text}"
        );
        if let Err(v) = parsed {
            assert_eq!(v.field, "program_account");
        }
    }

    #[test]
    fn children_name_their_business_and_id() {
        let id = uuid::Uuid::new_v4();
        let child = parse_business_child(
            &format!("businesses/123456782/employeeGroups/{id}"),
            "employeeGroups",
            "name",
        )
        .expect("valid");
        assert_eq!(child.business.as_str(), "123456782");
        assert_eq!(child.uuid("name"), Ok(id));
        let bad = parse_business_child(
            "businesses/123456782/employeeGroups/x",
            "employeeGroups",
            "name",
        )
        .expect("an id");
        assert!(bad.uuid("name").is_err());
    }
}
