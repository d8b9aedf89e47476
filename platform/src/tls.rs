//! TLS on every hop (rustls, ring as the crypto provider).
//!
//! Servers: `server.tls_cert` and `server.tls_key` (PEM files) turn TLS on
//! for a service's listeners; the files are checked at each handshake and
//! read again when they change, so a renewed certificate is served without a
//! restart (a file that cannot be read or parsed keeps the previous one, with
//! a warning). `server.tls_client_ca` additionally requires a client
//! certificate signed by that CA (mutual TLS between services).
//!
//! Clients: an `https://` upstream URL selects TLS; the server is verified
//! against `upstream.tls_ca` when set, else the system's roots, and
//! `upstream.tls_cert` / `upstream.tls_key` are presented as the client's
//! identity when set.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::balance::UpstreamSettings;
use crate::config::{ConfigError, ServerSettings};

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once on one listener; further connections wait.
const MAX_HANDSHAKES: usize = 256;

/// The crypto provider every TLS config here is built with.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Checks that the TLS keys of a server name readable files and come in pairs.
pub fn validate_server(settings: &ServerSettings, prefix: &str) -> Result<(), ConfigError> {
    pair(
        prefix,
        ("tls_cert", &settings.tls_cert),
        ("tls_key", &settings.tls_key),
    )?;
    if !settings.tls_client_ca.is_empty() && settings.tls_cert.is_empty() {
        return Err(ConfigError::new(
            format!("{prefix}.tls_client_ca"),
            "requires tls_cert and tls_key (client certificates are asked for over TLS only)",
        ));
    }
    Ok(())
}

/// Checks that the TLS keys of the upstreams come in pairs.
pub fn validate_upstream(settings: &UpstreamSettings, prefix: &str) -> Result<(), ConfigError> {
    pair(
        prefix,
        ("tls_cert", &settings.tls_cert),
        ("tls_key", &settings.tls_key),
    )
}

fn pair(prefix: &str, a: (&str, &str), b: (&str, &str)) -> Result<(), ConfigError> {
    match (a.1.is_empty(), b.1.is_empty()) {
        (true, false) => Err(ConfigError::new(
            format!("{prefix}.{}", a.0),
            format!("must be set with {}", b.0),
        )),
        (false, true) => Err(ConfigError::new(
            format!("{prefix}.{}", b.0),
            format!("must be set with {}", a.0),
        )),
        _ => Ok(()),
    }
}

/// Returns the acceptor of a server with TLS on, None when `tls_cert` is unset.
/// Fails when the files cannot be read or do not hold a certificate and key.
pub fn server_acceptor(settings: &ServerSettings) -> anyhow::Result<Option<TlsAcceptor>> {
    if settings.tls_cert.is_empty() {
        return Ok(None);
    }
    let provider = provider();
    let resolver = ReloadingCert::new(
        PathBuf::from(&settings.tls_cert),
        PathBuf::from(&settings.tls_key),
        provider.clone(),
    )?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if settings.tls_client_ca.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for cert in read_certs(Path::new(&settings.tls_client_ca))? {
            roots.add(cert)?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    // gRPC is HTTP/2 only.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// Turns accepted TCP connections into TLS streams, several handshakes at
/// once, each bounded by [`HANDSHAKE_TIMEOUT`]; a failed handshake is logged
/// and dropped. Hand-written: tonic's own TLS acceptor cannot take a
/// certificate resolver, so it could not serve a renewed certificate.
pub fn accept<S>(
    tcp: S,
    acceptor: TlsAcceptor,
) -> impl futures::Stream<Item = std::io::Result<TlsStream<TcpStream>>> + Send + 'static
where
    S: futures::Stream<Item = std::io::Result<TcpStream>> + Send + 'static,
{
    use futures::StreamExt as _;
    tcp.filter_map(|conn| async move {
        conn.inspect_err(|err| tracing::debug!(error = %err, "accept failed"))
            .ok()
    })
    .map(move |stream| {
        let acceptor = acceptor.clone();
        async move {
            let peer = stream.peer_addr().ok();
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => Some(Ok(tls)),
                // At debug: TCP probes and scanners fail handshakes all day;
                // the client sees why its own handshake failed.
                Ok(Err(err)) => {
                    tracing::debug!(?peer, error = %err, "TLS handshake failed");
                    None
                }
                Err(_) => {
                    tracing::debug!(?peer, "TLS handshake timed out");
                    None
                }
            }
        }
    })
    .buffer_unordered(MAX_HANDSHAKES)
    .filter_map(std::future::ready)
}

/// The client TLS of the upstreams: None for an `http://` URL.
pub fn client_config(
    settings: &UpstreamSettings,
    url: &http::Uri,
) -> anyhow::Result<Option<tonic::transport::ClientTlsConfig>> {
    if url.scheme_str() != Some("https") {
        return Ok(None);
    }
    let mut config = tonic::transport::ClientTlsConfig::new();
    if let Some(host) = url.host() {
        // Each replica is dialled by address: the name checked is the URL's.
        config = config.domain_name(host.trim_start_matches('[').trim_end_matches(']'));
    }
    config = if settings.tls_ca.is_empty() {
        config.with_native_roots()
    } else {
        let pem = read(Path::new(&settings.tls_ca))?;
        anyhow::ensure!(
            CertificateDer::pem_slice_iter(&pem).next().is_some(),
            "{} holds no PEM certificate",
            settings.tls_ca
        );
        config.ca_certificate(tonic::transport::Certificate::from_pem(pem))
    };
    if !settings.tls_cert.is_empty() {
        let cert = read(Path::new(&settings.tls_cert))?;
        let key = read(Path::new(&settings.tls_key))?;
        config = config.identity(tonic::transport::Identity::from_pem(cert, key));
    }
    Ok(Some(config))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| anyhow::anyhow!("cannot read {}: {err}", path.display()))
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} holds no PEM certificate",
        path.display()
    );
    Ok(certs)
}

/// What identifies a version of a file: its modification time and length.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Serves the certificate in `cert` and `key`, read again when either file
/// changes (hand-written: rustls has no resolver that follows files).
#[derive(Debug)]
struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<((Stamp, Stamp), Arc<CertifiedKey>)>,
}

impl ReloadingCert {
    fn new(cert: PathBuf, key: PathBuf, provider: Arc<CryptoProvider>) -> anyhow::Result<Self> {
        let stamps = (stamp(&cert), stamp(&key));
        let loaded = load(&cert, &key, &provider)?;
        Ok(Self {
            cert,
            key,
            provider,
            current: Mutex::new((stamps, loaded)),
        })
    }
}

fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain = read_certs(cert)?;
    let key = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|err| anyhow::anyhow!("{}: no PEM private key: {err}", key.display()))?;
    Ok(Arc::new(CertifiedKey::from_der(chain, key, provider)?))
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let stamps = (stamp(&self.cert), stamp(&self.key));
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.0 != stamps {
            // Recorded even when the load fails: a half-written file is not
            // read again at every handshake, only once it changes again.
            current.0 = stamps;
            match load(&self.cert, &self.key, &self.provider) {
                Ok(loaded) => {
                    tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                    current.1 = loaded;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "TLS certificate files changed but cannot be loaded; serving the previous certificate");
                }
            }
        }
        Some(current.1.clone())
    }
}
