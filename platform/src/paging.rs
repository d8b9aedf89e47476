//! Page sizes and opaque, signed page tokens for list RPCs (R-IN-1).
//!
//! A page token carries the sort key of the last row returned (keyset
//! pagination), so pages stay stable while rows are added, and an HMAC over
//! that key and everything the page belongs to: the RPC, the parent, the
//! filter (every request field that shapes the list) and the caller. A list
//! builds one [`PageScope`] naming all four and decodes and mints its tokens
//! through it, so no list can leave a binding out; a token replayed on
//! another list, parent, filter or caller, tampered with or made up is
//! INVALID_ARGUMENT naming `page_token` before any query runs. Lists always
//! say whether more remain: a next page token is returned exactly when
//! another row exists.

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Error;

type HmacSha256 = Hmac<Sha256>;

/// The first byte of every page token: the format, so a later one can be told apart.
const FORMAT: u8 = 2;
/// The length of the HMAC-SHA256 tag.
const TAG_LEN: usize = 32;
/// What the page key is derived with from the internal key, so a page
/// token's tag is never an internal token's signature.
const DERIVATION: &[u8] = b"ccp page tokens v2";

/// Returns the effective page size: `default` for 0, an error for negatives,
/// `max` at most.
pub fn page_size(requested: i32, default: usize, max: usize) -> Result<usize, Error> {
    match requested {
        n if n < 0 => Err(Error::invalid_field("page_size", "must not be negative")),
        0 => Ok(default),
        n => Ok((n as usize).min(max)),
    }
}

/// The key page tokens are signed with, derived from the internal key every
/// process of a deployment shares, so any replica accepts what another minted.
#[derive(Clone)]
pub struct PageKey(HmacSha256);

impl fmt::Debug for PageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PageKey(..)")
    }
}

/// Returns HMAC-SHA256 keyed with `key`.
fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length: this cannot fail.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| HmacSha256::new(&Default::default()))
}

impl PageKey {
    /// Returns the page key derived from the internal key `internal_key`.
    pub fn derive(internal_key: &[u8]) -> Self {
        let mut mac = keyed(internal_key);
        mac.update(DERIVATION);
        Self(keyed(&mac.finalize().into_bytes()))
    }
}

/// What a page token belongs to: one list of one parent, filtered one way,
/// read by one caller. Every field must be given (there is no default), so a
/// list cannot forget a binding.
#[derive(Debug, Clone)]
pub struct PageScope {
    /// The key, `ctx.internal.page_key().clone()`.
    pub key: PageKey,
    /// The RPC, e.g. `accounts.ListEmployeeGroups`.
    pub rpc: &'static str,
    /// The parent listed in canonical form (a BN9, a principal), or empty
    /// for a list of the caller's own.
    pub parent: String,
    /// Every request field besides the parent that shapes the list, e.g.
    /// `format!("show_deleted={}", req.show_deleted)`; empty when none does.
    /// Quote free text with `{:?}` so two filters never read alike.
    pub filter: String,
    /// Who lists: the caller's principal (`person:<uuid>`), or the internal
    /// subject (`service:gateway`) for an internal facts RPC.
    pub caller: String,
}

impl PageScope {
    /// Returns the tag of `last_key` in this scope, every part length-prefixed
    /// so no two scopes run together alike.
    fn tag(&self, last_key: &[u8]) -> HmacSha256 {
        let mut mac = self.key.0.clone();
        for part in [
            self.rpc.as_bytes(),
            self.parent.as_bytes(),
            self.filter.as_bytes(),
            self.caller.as_bytes(),
            last_key,
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// Returns the page token resuming after the row whose sort key is `last_key`.
    pub fn encode(&self, last_key: &str) -> String {
        let tag = self.tag(last_key.as_bytes()).finalize().into_bytes();
        let mut raw = Vec::with_capacity(1 + TAG_LEN + last_key.len());
        raw.push(FORMAT);
        raw.extend_from_slice(&tag);
        raw.extend_from_slice(last_key.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// Returns the sort key to resume after, None for the first page (an
    /// empty token); INVALID_ARGUMENT naming `page_token` for a token this
    /// list did not return for this parent, filter and caller.
    pub fn decode(&self, token: &str) -> Result<Option<String>, Error> {
        if token.is_empty() {
            return Ok(None);
        }
        let bad = || {
            Error::invalid_field(
                "page_token",
                "is not a token this list returned for this parent, filter and caller",
            )
        };
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| bad())?;
        let (format, rest) = raw.split_first().ok_or_else(bad)?;
        if *format != FORMAT || rest.len() < TAG_LEN {
            return Err(bad());
        }
        let (tag, key) = rest.split_at(TAG_LEN);
        self.tag(key).verify_slice(tag).map_err(|_| bad())?;
        // A signed key is one this list made; it holds no control character
        // (PostgreSQL would refuse a NUL in a query where SQLite would not).
        let key = String::from_utf8(key.to_vec()).map_err(|_| bad())?;
        if key.chars().any(char::is_control) {
            return Err(bad());
        }
        Ok(Some(key))
    }

    /// Splits `rows` fetched with `size + 1` into the page and the next token
    /// (set exactly when a row remains), `key` giving the sort key of the
    /// page's last row.
    pub fn finish_page<T>(
        &self,
        mut rows: Vec<T>,
        size: usize,
        key: impl Fn(&T) -> String,
    ) -> (Vec<T>, String) {
        if rows.len() > size {
            rows.truncate(size);
            let token = rows
                .last()
                .map(|r| self.encode(&key(r)))
                .unwrap_or_default();
            (rows, token)
        } else {
            (rows, String::new())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn scope(key: &PageKey) -> PageScope {
        PageScope {
            key: key.clone(),
            rpc: "accounts.ListEmployeeGroups",
            parent: "123456782".to_owned(),
            filter: "show_deleted=false".to_owned(),
            caller: "person:00000000-0000-0000-0000-000000000001".to_owned(),
        }
    }

    fn is_page_token_error(r: Result<Option<String>, Error>) -> bool {
        matches!(r, Err(e) if e.violations().iter().any(|v| v.field == "page_token"))
    }

    #[test]
    fn r_in_1_page_token_a_token_round_trips_in_its_own_scope() {
        let key = PageKey::derive(b"internal key of thirty-two bytes");
        let s = scope(&key);
        assert_eq!(s.decode(&s.encode("k1")).unwrap().as_deref(), Some("k1"));
        assert_eq!(s.decode(&s.encode("")).unwrap().as_deref(), Some(""));
        assert_eq!(s.decode("").unwrap(), None);
    }

    #[test]
    fn r_in_1_page_token_a_token_of_another_rpc_parent_filter_caller_or_key_is_refused() {
        let key = PageKey::derive(b"internal key of thirty-two bytes");
        let other_key = PageKey::derive(b"another key of thirty-two bytes!");
        let token = scope(&key).encode("k1");
        let others = [
            PageScope {
                rpc: "accounts.ListEmployeeRequests",
                ..scope(&key)
            },
            PageScope {
                parent: "987654324".to_owned(),
                ..scope(&key)
            },
            PageScope {
                filter: "show_deleted=true".to_owned(),
                ..scope(&key)
            },
            PageScope {
                caller: "person:00000000-0000-0000-0000-000000000002".to_owned(),
                ..scope(&key)
            },
            scope(&other_key),
        ];
        for other in &others {
            assert!(is_page_token_error(other.decode(&token)), "{other:?}");
        }
        assert!(scope(&key).decode(&token).is_ok());
    }

    #[test]
    fn r_in_1_page_token_parts_do_not_run_together() {
        let key = PageKey::derive(b"k");
        let a = PageScope {
            parent: "12".to_owned(),
            filter: "3".to_owned(),
            ..scope(&key)
        };
        let b = PageScope {
            parent: "1".to_owned(),
            filter: "23".to_owned(),
            ..scope(&key)
        };
        assert!(is_page_token_error(b.decode(&a.encode("x"))));
    }

    #[test]
    fn r_in_1_page_token_a_tampered_truncated_or_made_up_token_is_refused() {
        let key = PageKey::derive(b"internal key of thirty-two bytes");
        let s = scope(&key);
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.encode("123456782"))
            .unwrap();
        for i in 0..raw.len() {
            let mut t = raw.clone();
            t[i] ^= 1;
            let t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t);
            assert!(is_page_token_error(s.decode(&t)), "byte {i} flipped");
        }
        // The key changed, the tag kept: a forged resume point.
        let mut forged = raw.clone();
        forged.truncate(1 + TAG_LEN);
        forged.extend_from_slice(b"000000000");
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged);
        assert!(is_page_token_error(s.decode(&forged)));
        let truncated = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw[..20]);
        assert!(is_page_token_error(s.decode(&truncated)));
        // The old unsigned format, garbage, padding and a NUL are refused.
        let old = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("p1|123456782");
        for t in [old.as_str(), "x", "%%%", "AA==", "\0", "p1|k"] {
            assert!(is_page_token_error(s.decode(t)), "{t:?}");
        }
    }

    #[test]
    fn r_in_1_page_token_finish_page_reports_more_only_when_a_row_remains() {
        let key = PageKey::derive(b"k");
        let s = scope(&key);
        let (page, next) = s.finish_page(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(page, vec![1, 2]);
        assert_eq!(s.decode(&next).unwrap().as_deref(), Some("2"));
        let (page, next) = s.finish_page(vec![1, 2], 2, |n| n.to_string());
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
