//! The kinds of e-mail notice a person can choose to receive or not: one list, read by identity
//! (which accepts a choice only for a kind listed here) and by the notifications service (whose
//! notices are exactly these; a unit test there checks it).

/// Every kind of notice, in the order profiles list their choices.
pub const NOTICE_KINDS: [&str; 10] = [
    "relationship-request-received",
    "relationship-request-approved",
    "relationship-request-rejected",
    "relationship-ended",
    "relationship-expired",
    "relationship-expiry-reminder",
    "employee-request-received",
    "employee-request-approved",
    "employee-request-rejected",
    "credential-expiry-reminder",
];

/// Returns whether `kind` is one of [`NOTICE_KINDS`].
pub fn is_notice_kind(kind: &str) -> bool {
    NOTICE_KINDS.contains(&kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_distinct_lowercase_ids() {
        for (i, kind) in NOTICE_KINDS.iter().enumerate() {
            assert!(
                kind.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{kind}"
            );
            assert!(!NOTICE_KINDS[..i].contains(kind), "{kind} twice");
        }
        assert!(is_notice_kind("relationship-ended"));
        assert!(!is_notice_kind("Relationship-Ended"));
    }
}
