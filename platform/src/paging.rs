//! Page sizes and opaque page tokens for list RPCs.
//!
//! A page token encodes the sort key of the last row returned (keyset
//! pagination), so pages stay stable while rows are added. Lists always say
//! whether more remain: a next page token is returned exactly when another
//! row exists.

use base64::Engine as _;

use crate::error::Error;

/// Returns the effective page size: `default` for 0, an error for negatives,
/// `max` at most.
pub fn page_size(requested: i32, default: usize, max: usize) -> Result<usize, Error> {
    match requested {
        n if n < 0 => Err(Error::invalid_field("page_size", "must not be negative")),
        0 => Ok(default),
        n => Ok((n as usize).min(max)),
    }
}

/// Encodes the last sort key of a page into a page token.
pub fn encode_token(last_key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("p1|{last_key}"))
}

/// Decodes a page token into the sort key to continue after; None for the first page.
pub fn decode_token(token: &str) -> Result<Option<String>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || Error::invalid_field("page_token", "is not a token this list returned");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    // A key with a control character (a NUL) is none this list returned, and
    // PostgreSQL would refuse it in a query where SQLite would not.
    raw.strip_prefix("p1|")
        .filter(|k| !k.chars().any(char::is_control))
        .map(|k| Some(k.to_owned()))
        .ok_or_else(bad)
}

/// Splits `rows` fetched with `size + 1` into the page and the next token,
/// using `key` for the token of the page's last row.
pub fn finish_page<T>(
    mut rows: Vec<T>,
    size: usize,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, String) {
    if rows.len() > size {
        rows.truncate(size);
        let token = rows
            .last()
            .map(|r| encode_token(&key(r)))
            .unwrap_or_default();
        (rows, token)
    } else {
        (rows, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        assert_eq!(
            decode_token(&encode_token("k1")).ok().flatten().as_deref(),
            Some("k1")
        );
        assert!(decode_token("x").is_err());
        assert_eq!(decode_token("").ok(), Some(None));
    }

    #[test]
    fn finish_page_reports_more_only_when_a_row_remains() {
        let (page, next) = finish_page(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(page, vec![1, 2]);
        assert_eq!(decode_token(&next).ok().flatten().as_deref(), Some("2"));
        let (page, next) = finish_page(vec![1, 2], 2, |n| n.to_string());
        assert_eq!(page.len(), 2);
        assert!(next.is_empty());
    }

    #[test]
    fn page_size_bounds() {
        assert_eq!(page_size(0, 50, 500).ok(), Some(50));
        assert_eq!(page_size(10_000, 50, 500).ok(), Some(500));
        assert!(page_size(-1, 50, 500).is_err());
    }
}
