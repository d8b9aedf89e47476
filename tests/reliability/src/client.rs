//! Calls through the gateway, each bounded in time and recorded: when it
//! started, when it was answered, and the status code.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ccp_platform::auth::REVISION_HEADER;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

/// The upper bound of one call (client side).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What a call was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Setting the scenario up (not counted).
    Setup,
    /// A write of the load.
    Write,
    /// A check of the load.
    Check,
    /// A revoking write.
    Revoke,
    /// A probe with a revoked token or grant.
    Probe,
    /// Reading an acknowledged write back.
    Readback,
}

/// One answered call.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// What it was for.
    pub purpose: Purpose,
    /// When it was sent.
    pub started: Instant,
    /// When it was answered (or given up).
    pub ended: Instant,
    /// Its status code (OK included).
    pub code: Code,
    /// The status message, unless OK.
    pub message: Option<String>,
}

/// Every call of a scenario and every process kill.
#[derive(Debug, Default)]
pub struct Recorder {
    calls: Mutex<Vec<CallRecord>>,
    kills: Mutex<Vec<Kill>>,
}

/// A SIGKILL of a process: when it was sent, and when the process was gone.
#[derive(Debug, Clone)]
pub struct Kill {
    /// The process.
    pub process: String,
    /// When SIGKILL was sent.
    pub sent: Instant,
    /// When the process was gone.
    pub gone: Instant,
}

impl Kill {
    /// Returns true when `call` was in flight on the killed process: sent
    /// before it was gone and answered after the kill was sent.
    pub fn caught(&self, call: &CallRecord) -> bool {
        call.started < self.gone && call.ended >= self.sent
    }
}

impl Recorder {
    /// Records a call.
    pub fn call(&self, record: CallRecord) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record);
    }

    /// Records a kill.
    pub fn kill(&self, kill: Kill) {
        self.kills
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(kill);
    }

    /// Returns the calls recorded so far.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Returns the kills recorded so far.
    pub fn kills(&self) -> Vec<Kill> {
        self.kills
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

pub use ccp::client::code_name;

/// How a call authenticates.
#[derive(Debug, Clone, Copy, Default)]
pub struct Auth<'a> {
    /// The bearer access token.
    pub token: Option<&'a str>,
    /// A revision token to send as `x-ccp-revision`.
    pub revision: Option<&'a str>,
}

impl<'a> Auth<'a> {
    /// Anonymous.
    pub fn none() -> Self {
        Self::default()
    }

    /// With a bearer token.
    pub fn bearer(token: &'a str) -> Self {
        Self {
            token: Some(token),
            revision: None,
        }
    }

    /// With a bearer token and a revision token.
    pub fn bearer_at(token: &'a str, revision: &'a str) -> Self {
        Self {
            token: Some(token),
            revision: Some(revision),
        }
    }
}

/// A client of one gateway (or service) endpoint that records every call.
#[derive(Debug, Clone)]
pub struct Caller {
    channel: Channel,
    recorder: Arc<Recorder>,
    internal_token: Option<String>,
}

impl Caller {
    /// Returns a caller of `url` (connected lazily, reconnecting after a restart).
    pub fn new(url: &str, recorder: Arc<Recorder>) -> anyhow::Result<Self> {
        let channel = Endpoint::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_secs(1))
            .timeout(CALL_TIMEOUT)
            .connect_lazy();
        Ok(Self {
            channel,
            recorder,
            internal_token: None,
        })
    }

    /// Returns this caller sending `token` as the internal token (calls
    /// straight to a service's internal API).
    pub fn with_internal_token(mut self, token: String) -> Self {
        self.internal_token = Some(token);
        self
    }

    /// Sends one call made by `send` with `msg` and `auth`, bounded by
    /// [`CALL_TIMEOUT`], and records it as `purpose`.
    pub async fn call<T, R, F, Fut>(
        &self,
        purpose: Purpose,
        msg: T,
        auth: Auth<'_>,
        send: F,
    ) -> Result<R, Status>
    where
        F: FnOnce(Channel, Request<T>) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let mut request = Request::new(msg);
        request.set_timeout(CALL_TIMEOUT);
        let metadata = request.metadata_mut();
        let bad = |what: &str| Status::invalid_argument(format!("client: {what} is not ASCII"));
        if let Some(token) = auth.token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| bad("the token"))?;
            metadata.insert("authorization", value);
        }
        if let Some(revision) = auth.revision {
            let value = revision.parse().map_err(|_| bad("the revision"))?;
            metadata.insert(REVISION_HEADER, value);
        }
        if let Some(internal) = &self.internal_token {
            let value = internal.parse().map_err(|_| bad("the internal token"))?;
            metadata.insert(ccp_platform::auth::INTERNAL_TOKEN_HEADER, value);
        }
        let started = Instant::now();
        let answer = tokio::time::timeout(
            CALL_TIMEOUT + Duration::from_secs(1),
            send(self.channel.clone(), request),
        )
        .await
        .unwrap_or_else(|_| Err(Status::deadline_exceeded("client: no answer in time")));
        let ended = Instant::now();
        self.recorder.call(CallRecord {
            purpose,
            started,
            ended,
            code: answer.as_ref().map_or_else(Status::code, |_| Code::Ok),
            message: answer.as_ref().err().map(|s| s.message().to_owned()),
        });
        answer.map(Response::into_inner)
    }
}
