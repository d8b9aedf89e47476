//! Secrets at rest and in flight: the key-encryption key (AES-256-GCM) that
//! protects signing keys in the database, refresh tokens (random, stored as
//! SHA-256), machine-credential secrets (random, stored with argon2id), and
//! the key files the embedded mode keeps under its data directory.
//!
//! Nothing here logs a secret; `Debug` of every secret-holding type is redacted.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use sha2::Digest as _;

/// A 256-bit key that encrypts signing keys at rest.
#[derive(Clone)]
pub struct KeyEncryptionKey([u8; 32]);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

impl KeyEncryptionKey {
    /// Parses base64 (standard or URL-safe) of exactly 32 bytes.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let bytes = decode_base64(text.trim())
            .ok_or_else(|| anyhow::anyhow!("must be base64 of 32 bytes"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("must decode to exactly 32 bytes"))?;
        Ok(Self(key))
    }

    /// Returns a fresh random key.
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// Returns the key as base64.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Encrypts `plaintext`, binding it to `context` (e.g. the key id):
    /// returns nonce ‖ ciphertext.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> anyhow::Result<Vec<u8>> {
        let cipher = Aes256Gcm::new_from_slice(&self.0).map_err(|_| anyhow::anyhow!("key"))?;
        let nonce: [u8; 12] = rand::random();
        let payload = aes_gcm::aead::Payload {
            msg: plaintext,
            aad: context,
        };
        let sealed = cipher
            .encrypt(&Nonce::from(nonce), payload)
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what [`KeyEncryptionKey::seal`] returned for the same `context`.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> anyhow::Result<Vec<u8>> {
        if sealed.len() < 12 {
            anyhow::bail!("sealed value too short");
        }
        let (nonce, body) = sealed.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| anyhow::anyhow!("nonce"))?;
        let cipher = Aes256Gcm::new_from_slice(&self.0).map_err(|_| anyhow::anyhow!("key"))?;
        cipher
            .decrypt(
                &Nonce::from(nonce),
                aes_gcm::aead::Payload {
                    msg: body,
                    aad: context,
                },
            )
            .map_err(|_| {
                anyhow::anyhow!("cannot decrypt a signing key: wrong identity.key_encryption_key?")
            })
    }
}

/// Decodes standard or URL-safe base64, padded or not.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .ok()
}

/// Returns the file of the key-encryption key under a data directory.
pub fn kek_file(data_dir: &Path) -> PathBuf {
    data_dir.join("identity-kek.key")
}

/// Returns the file of the development issuer's Ed25519 seed under a data directory.
pub fn dev_issuer_key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-issuer.key")
}

/// Reads a base64 key from `path`, creating it (mode 0600) with `generate()`
/// when it does not exist. Concurrent creators agree: the first file wins.
pub fn read_or_create_key_file(
    path: &Path,
    generate: impl FnOnce() -> String,
) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(text.trim().to_owned()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => anyhow::bail!("cannot read {}: {err}", path.display()),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key = generate();
    match write_private(path, &key) {
        Ok(()) => Ok(key),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(path)?.trim().to_owned())
        }
        Err(err) => anyhow::bail!("cannot write {}: {err}", path.display()),
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())
}

/// A refresh token: 256 random bits, base64url, prefixed `rt1.`.
pub fn new_refresh_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "rt1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Returns the SHA-256 (hex) under which a refresh token is stored.
pub fn refresh_token_hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// A machine-credential secret: 256 random bits, base64url, prefixed `cs1.`.
pub fn new_client_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "cs1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Hashes secrets with argon2id.
#[derive(Debug, Clone)]
pub struct SecretHasher {
    params: argon2::Params,
}

impl SecretHasher {
    /// Returns a hasher with the given memory (KiB) and iteration costs.
    pub fn new(memory_kib: u32, iterations: u32) -> anyhow::Result<Self> {
        let params = argon2::Params::new(memory_kib, iterations, 1, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        Ok(Self { params })
    }

    fn argon2(&self) -> argon2::Argon2<'static> {
        argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            self.params.clone(),
        )
    }

    /// Returns the PHC string of `secret` with a fresh salt.
    pub fn hash(&self, secret: &str) -> anyhow::Result<String> {
        use argon2::PasswordHasher as _;
        let salt_bytes: [u8; 16] = rand::random();
        let salt = argon2::password_hash::SaltString::encode_b64(&salt_bytes)
            .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        Ok(self
            .argon2()
            .hash_password(secret.as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string())
    }

    /// Returns true when `secret` matches the PHC string `hash`.
    pub fn verify(&self, secret: &str, hash: &str) -> bool {
        use argon2::PasswordVerifier as _;
        argon2::password_hash::PasswordHash::new(hash).is_ok_and(|parsed| {
            self.argon2()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_key_and_context() {
        let kek = KeyEncryptionKey::generate();
        let sealed = kek.seal(b"seed", b"kid-1").unwrap();
        assert_eq!(kek.open(&sealed, b"kid-1").unwrap(), b"seed");
        assert!(kek.open(&sealed, b"kid-2").is_err());
        assert!(
            KeyEncryptionKey::generate()
                .open(&sealed, b"kid-1")
                .is_err()
        );
        assert!(KeyEncryptionKey::parse(&kek.to_base64()).is_ok());
        assert!(KeyEncryptionKey::parse("c2hvcnQ=").is_err());
    }

    #[test]
    #[ignore = "a measurement: cargo test -p ccp-identity --lib -- --ignored --nocapture"]
    fn measure_the_default_argon2id_cost() {
        let d = crate::config::MachineCredentialSettings::default();
        let hasher = SecretHasher::new(d.argon2_memory_kib, d.argon2_iterations).unwrap();
        let hash = hasher.hash("cs1.secret").unwrap();
        let start = std::time::Instant::now();
        for _ in 0..10 {
            assert!(hasher.verify("cs1.secret", &hash));
        }
        println!(
            "argon2id m={} KiB t={}: {:?} per verification",
            d.argon2_memory_kib,
            d.argon2_iterations,
            start.elapsed() / 10
        );
    }

    #[test]
    fn argon2id_hashes_verify() {
        let hasher = SecretHasher::new(64, 1).unwrap();
        let hash = hasher.hash("s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify("s3cret", &hash));
        assert!(!hasher.verify("other", &hash));
    }
}
