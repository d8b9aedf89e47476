//! Test certificates: a CA made per test and certificates it issues (rcgen),
//! written as PEM files for the TLS settings.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::tempfile_dir::TempDir;

/// A test CA and the directory its files are written to (removed on drop).
pub struct TestPki {
    dir: TempDir,
    params: CertificateParams,
    key: KeyPair,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl TestPki {
    /// Makes a CA named `name`; its certificate is written to `<dir>/ca.pem`.
    pub fn new(name: &str) -> Self {
        let dir = TempDir::new();
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).expect("write CA");
        Self { dir, params, key }
    }

    /// Returns the directory the files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Returns the CA certificate's file.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Issues a certificate for `names` (DNS names or IP addresses), good
    /// for servers and clients, written to `<dir>/<file>.crt` and
    /// `<dir>/<file>.key`; returns (certificate, key).
    pub fn issue(&self, file: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let cert = self.dir.path().join(format!("{file}.crt"));
        let key = self.dir.path().join(format!("{file}.key"));
        self.issue_at(names, &cert, &key);
        (cert, key)
    }

    /// Issues a certificate for `names` into the files `cert` and `key`
    /// (replacing them: a renewal).
    pub fn issue_at(&self, names: &[&str], cert: &Path, key: &Path) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("certificate params");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let leaf_key = KeyPair::generate().expect("key");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let issued = params.signed_by(&leaf_key, &issuer).expect("sign");
        std::fs::write(key, leaf_key.serialize_pem()).expect("write key");
        std::fs::write(cert, issued.pem()).expect("write certificate");
    }
}
