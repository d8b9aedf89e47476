//! What a service requires of every call: the server-side wrapper that
//! verifies the internal token and, for public services, the access token.

#[allow(clippy::wildcard_imports)]
use super::*;

/// What a service requires of every call.
#[derive(Clone)]
pub struct ServerAuth {
    internal: Arc<InternalTokens>,
    access: Option<Arc<AccessTokenVerifier>>,
}

impl fmt::Debug for ServerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerAuth")
            .field("access", &self.access.is_some())
            .finish()
    }
}

impl ServerAuth {
    /// Internal facts services: an internal token and nothing else.
    pub fn internal_only(internal: Arc<InternalTokens>) -> Self {
        Self {
            internal,
            access: None,
        }
    }

    /// Public services: an internal token, plus the caller's access token when
    /// present (verified; handlers that need one call [`caller`]).
    pub fn with_access_tokens(
        internal: Arc<InternalTokens>,
        access: Arc<AccessTokenVerifier>,
    ) -> Self {
        Self {
            internal,
            access: Some(access),
        }
    }

    /// Wraps a generated server so that every call is authenticated first.
    pub fn wrap<S>(&self, inner: S) -> Authenticated<S> {
        Authenticated {
            inner,
            auth: self.clone(),
        }
    }

    async fn authenticate(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<(InternalClaims, Option<Caller>), AuthError> {
        let internal = headers
            .get(INTERNAL_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::Missing("internal token"))?;
        let claims = self.internal.verify(internal)?;
        let caller = match (&self.access, bearer(headers)) {
            (Some(verifier), Some(token)) => Some(verifier.verify(token).await?),
            _ => None,
        };
        Ok((claims, caller))
    }
}

/// Returns the bearer token of an `authorization` header.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Returns the facts revisions of the [`DECIDED_ON_HEADER`]; a token that
/// does not parse is ignored (the write then has nothing to be checked against).
fn decided_on(headers: &http::HeaderMap) -> Vec<crate::revision::Revision> {
    headers
        .get_all(DECIDED_ON_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| t.trim().parse().ok())
        .collect()
}

/// A generated server wrapped by [`ServerAuth::wrap`].
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    auth: ServerAuth,
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // Take the service that was driven to readiness; leave a clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            match auth.authenticate(request.headers()).await {
                Ok((claims, caller)) => {
                    request.extensions_mut().insert(claims);
                    if let Some(caller) = caller {
                        request.extensions_mut().insert(caller);
                    }
                    // Only a holder of the internal token gets here, so the
                    // revisions it says it decided on are the gateway's.
                    let decided_on = decided_on(request.headers());
                    crate::store::deciding_on(decided_on, inner.call(request)).await
                }
                Err(err) => Ok(Status::from(err).into_http()),
            }
        })
    }
}
