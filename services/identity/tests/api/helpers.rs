//! spawn_app, typed clients, an external test issuer and a log capture.

use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use ccp_identity::config::{IdentitySettings, TrustedIssuerSettings};
use ccp_identity::secrets::KeyEncryptionKey;
use ccp_platform::auth::{AccessClaims, INTERNAL_TOKEN_HEADER};
use ccp_platform::bus::{Delivery, StartFrom};
use ccp_platform::clock::Clock;
use ccp_platform::config::ServerSettings;
use ccp_platform::context::ServiceContext;
use ccp_platform::testing::TestBackend;
use ccp_platform::testing::tempfile_dir::TempDir;
use ccp_proto::common::v1::{DomainEvent, EventType};
use ccp_proto::identity::v1 as pb;
use ccp_proto::identity::v1::identity_client::IdentityClient;
use ccp_proto::identity::v1::identity_facts_client::IdentityFactsClient;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sea_orm::DatabaseConnection;
use secrecy::SecretString;
use tonic::transport::Channel;

pub const ISSUER: &str = "https://idp.test.example/gckey";
pub const AUDIENCE: &str = "ccp-portal";
pub const DEV_SEED: [u8; 32] = [42; 32];

/// Returns every backend to run a behaviour on.
pub async fn backends() -> Vec<TestBackend> {
    TestBackend::all().await
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once per test binary) a global subscriber writing every level to memory.
pub fn capture_logs() {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = BufferWriter(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        buffer
    });
}

/// Returns everything logged so far in this test binary.
pub fn logs() -> String {
    LOGS.get()
        .map(|b| String::from_utf8_lossy(&b.lock().unwrap()).into_owned())
        .unwrap_or_default()
}

/// An external OIDC issuer the tests control: an Ed25519 key and its JWKS file.
pub struct TestIssuer {
    pub issuer: String,
    pub audience: String,
    pub kid: String,
    pub seed: [u8; 32],
    pub dir: TempDir,
}

#[derive(serde::Serialize, Clone)]
pub struct IdClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
}

pub fn ed_key(seed: &[u8; 32]) -> EncodingKey {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let signing = ed25519_dalek::SigningKey::from_bytes(seed);
    EncodingKey::from_ed_der(signing.to_pkcs8_der().unwrap().as_bytes())
}

pub fn ed_public(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}

impl TestIssuer {
    pub fn new() -> Self {
        let seed: [u8; 32] = rand::random();
        let dir = TempDir::new();
        let this = Self {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            kid: "idp-key-1".to_owned(),
            seed,
            dir,
        };
        let jwks =
            ccp_platform::auth::jwks_json([(this.kid.as_str(), ed_public(&seed).as_slice())]);
        std::fs::write(this.jwks_path(), jwks).unwrap();
        this
    }

    pub fn jwks_path(&self) -> std::path::PathBuf {
        self.dir.path().join("jwks.json")
    }

    pub fn settings(&self) -> TrustedIssuerSettings {
        TrustedIssuerSettings {
            name: "gckey".to_owned(),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            jwks_file: Some(self.jwks_path()),
            jwks_url: None,
            algorithms: vec!["EdDSA".to_owned(), "RS256".to_owned()],
        }
    }

    pub fn claims(&self, sub: &str, now: DateTime<Utc>) -> IdClaims {
        IdClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: sub.to_owned(),
            exp: now.timestamp() + 300,
            nbf: now.timestamp(),
            iat: now.timestamp(),
        }
    }

    pub fn sign(&self, claims: &IdClaims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &ed_key(&self.seed)).unwrap()
    }

    pub fn token(&self, sub: &str, now: DateTime<Utc>) -> String {
        self.sign(&self.claims(sub, now))
    }
}

/// Encodes a JWT by hand (for `alg: none` and other forgeries).
pub fn raw_jwt(
    header: &serde_json::Value,
    claims: &impl serde::Serialize,
    signature: &[u8],
) -> String {
    let e = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    format!(
        "{}.{}.{}",
        e(header.to_string().as_bytes()),
        e(serde_json::to_string(claims).unwrap().as_bytes()),
        e(signature)
    )
}

/// Replaces a token's payload with `claims`, keeping header and signature.
pub fn tamper(token: &str, claims: &impl serde::Serialize) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_string(claims).unwrap().as_bytes());
    format!("{}.{}.{}", parts[0], payload, parts[2])
}

/// HS256 over the token's header and claims with `secret` (e.g. a public key).
pub fn hs256(kid: &str, claims: &impl serde::Serialize, secret: &[u8]) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// A running identity service and what a test needs around it.
pub struct TestApp {
    pub ctx: ServiceContext,
    pub clock: Clock,
    pub issuer: TestIssuer,
    pub settings: IdentitySettings,
    pub kek: KeyEncryptionKey,
    pub identity: IdentityClient<Channel>,
    pub facts: IdentityFactsClient<Channel>,
    /// Runs the service's sweep on demand (its own loop waits an hour between sweeps).
    pub sweeper: ccp_identity::app::reminders::Sweeper,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn test_settings(
    backend: &TestBackend,
    issuer: &TestIssuer,
    kek: &KeyEncryptionKey,
) -> IdentitySettings {
    let mut settings = IdentitySettings {
        server: ServerSettings {
            listen: "127.0.0.1:0".to_owned(),
            ..ServerSettings::default()
        },
        database: backend.settings("identity"),
        issuers: vec![issuer.settings()],
        key_encryption_key: SecretString::from(kek.to_base64()),
        ..IdentitySettings::default()
    };
    settings.dev_issuer.enabled = Some(true);
    settings.dev_issuer.key =
        SecretString::from(base64::engine::general_purpose::STANDARD.encode(DEV_SEED));
    settings.machine_credentials.argon2_memory_kib = 256;
    settings.machine_credentials.argon2_iterations = 1;
    settings.machine_credentials.slowdown_after = 2;
    settings.machine_credentials.slowdown_ms = 5;
    settings.machine_credentials.lockout_after = 5;
    settings.machine_credentials.lockout_secs = 600;
    // The tests sweep at exact instants; the background loop sweeps once at start, then waits.
    settings.sweep_interval_ms = 3_600_000;
    settings
}

pub async fn spawn_app(backend: &TestBackend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(
    backend: &TestBackend,
    tweak: impl FnOnce(&mut IdentitySettings),
) -> TestApp {
    capture_logs();
    let issuer = TestIssuer::new();
    let kek = KeyEncryptionKey::generate();
    let mut settings = test_settings(backend, &issuer, &kek);
    tweak(&mut settings);
    let clock = Clock::settable(start_time());
    let ctx = ServiceContext::in_memory(clock.clone());
    let app = ccp_identity::Application::build(&ctx, &settings)
        .await
        .expect("identity builds");
    let addr = format!("http://{}", app.local_addr());
    let sweeper = app.sweeper();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(addr).unwrap().connect().await.unwrap();
    TestApp {
        ctx,
        clock,
        issuer,
        settings,
        kek,
        identity: IdentityClient::new(channel.clone()),
        facts: IdentityFactsClient::new(channel),
        sweeper,
        stop: Some(stop),
        task: Some(task),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl TestApp {
    /// Wraps a message with the internal token and, when given, a bearer token.
    pub fn req<T>(&self, message: T, bearer: Option<&str>) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        r.metadata_mut().insert(
            INTERNAL_TOKEN_HEADER,
            self.ctx.internal.mint("service:test").parse().unwrap(),
        );
        if let Some(token) = bearer {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        r
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub async fn db(&self) -> DatabaseConnection {
        ccp_platform::db::connect(&self.settings.database)
            .await
            .unwrap()
    }

    pub async fn sign_in_token(&self, id_token: String) -> Result<pb::Session, tonic::Status> {
        self.identity
            .clone()
            .sign_in(self.req(pb::SignInRequest { id_token }, None))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn sign_in(&self, sub: &str) -> pb::Session {
        self.sign_in_token(self.issuer.token(sub, self.now()))
            .await
            .unwrap()
    }

    pub fn profile_input(name: &str) -> pb::Profile {
        pb::Profile {
            legal_name: name.to_owned(),
            email: format!("{}@example.ca", name.to_lowercase().replace(' ', ".")),
            phone: "+1 613 555 0100".to_owned(),
            preferred_language: pb::Language::En as i32,
            email_notifications: true,
            ..pb::Profile::default()
        }
    }

    pub async fn create_profile(
        &self,
        session: &pb::Session,
        name: &str,
    ) -> pb::CreateProfileResponse {
        self.identity
            .clone()
            .create_profile(self.req(
                pb::CreateProfileRequest {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    profile: Some(Self::profile_input(name)),
                },
                Some(&session.access_token),
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// Signs a new person in and creates the profile; returns the profile session.
    pub async fn person(&self, sub: &str) -> pb::Session {
        let first = self.sign_in(sub).await;
        self.create_profile(&first, sub).await.session.unwrap()
    }

    pub async fn my_profile(&self, token: &str) -> Result<pb::Profile, tonic::Status> {
        self.identity
            .clone()
            .get_my_profile(self.req(pb::GetMyProfileRequest {}, Some(token)))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<pb::Session, tonic::Status> {
        self.identity
            .clone()
            .refresh_session(self.req(
                pb::RefreshSessionRequest {
                    refresh_token: refresh_token.to_owned(),
                },
                None,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn create_credential(
        &self,
        token: &str,
        bn: &str,
        request_id: &str,
    ) -> Result<pb::CreateMachineCredentialResponse, tonic::Status> {
        self.identity
            .clone()
            .create_machine_credential(self.req(
                pb::CreateMachineCredentialRequest {
                    request_id: request_id.to_owned(),
                    parent: format!("businesses/{bn}"),
                    display_name: "broker system".to_owned(),
                    expire_time: Some(ccp_platform::store::timestamp(
                        self.now() + chrono::Duration::days(365),
                    )),
                },
                Some(token),
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn issue(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<pb::MachineToken, tonic::Status> {
        self.identity
            .clone()
            .issue_machine_token(self.req(
                pb::IssueMachineTokenRequest {
                    client_id: client_id.to_owned(),
                    client_secret: secret.to_owned(),
                },
                None,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// The service's active signer (the tests forge tokens with the real key).
    pub async fn signer(&self) -> ccp_platform::auth::AccessTokenSigner {
        ccp_identity::store::keys::active_signer(&self.db().await, &self.kek)
            .await
            .unwrap()
    }

    /// Decodes an access token's claims without verifying it.
    pub fn claims(token: &str) -> AccessClaims {
        jsonwebtoken::dangerous::insecure_decode_claims(token).unwrap()
    }

    /// Waits (bounded) for an event of `kind` on identity's stream.
    pub async fn event(
        &self,
        kind: EventType,
        matching: impl Fn(&DomainEvent) -> bool,
    ) -> DomainEvent {
        let mut sub = self
            .ctx
            .bus
            .subscribe(ccp_identity::EVENT_STREAM, StartFrom::Beginning)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(item) = sub.next().await {
                if let Ok(Delivery::Event(d)) = item {
                    let e = <DomainEvent as prost::Message>::decode(d.payload.as_slice()).unwrap();
                    if e.r#type == kind as i32 && matching(&e) {
                        return e;
                    }
                }
            }
            panic!("subscription ended");
        })
        .await
        .expect("event within 10 s")
    }
}

/// Asserts UNAUTHENTICATED.
pub fn assert_unauthenticated<T: std::fmt::Debug>(r: Result<T, tonic::Status>, what: &str) {
    match r {
        Err(s) => assert_eq!(s.code(), tonic::Code::Unauthenticated, "{what}: {s:?}"),
        Ok(v) => panic!("{what}: accepted: {v:?}"),
    }
}

/// Returns the field names of an INVALID_ARGUMENT status.
pub fn fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    ccp_platform::error::field_violations(status)
        .into_iter()
        .map(|v| v.field)
        .collect()
}

#[allow(dead_code)]
pub fn flush_logs() {
    let _ = std::io::stdout().flush();
}
