//! The EWS HTTP client: one per Exchange endpoint.
//!
//! It owns authentication (NTLMv2 on kept-alive connections, Basic over TLS,
//! OAuth2 client-credentials bearer tokens), the per-endpoint concurrency
//! limit, bounded retries with jittered exponential backoff (and the
//! server's BackOffMilliseconds on ErrorServerBusy), the response size cap,
//! and remembers the ServerVersionInfo the server last announced.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::Rng as _;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use tokio::sync::Semaphore;
use url::Url;

use super::error::EwsError;
use super::ntlm::{self, Challenge, NtlmCredentials};
use super::ops::get_streaming_events::{GetStreamingEvents, StreamingEvents, split_envelopes};
use super::soap::{
    self, Impersonation, Operation, RequestHeader, ResponseStatus as _, ServerVersion, ServerVersionInfo,
};
use crate::clock::SharedClock;

/// OAuth2 client-credentials settings (Exchange Online style).
#[derive(Clone)]
pub struct OAuth2ClientCredentials {
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: String,
    /// e.g. `https://outlook.office365.com/.default`.
    pub scope: String,
}

impl std::fmt::Debug for OAuth2ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2ClientCredentials")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// How the client proves who it is.
#[derive(Clone)]
pub enum Auth {
    Ntlm(NtlmCredentials),
    /// Refused on a plain-HTTP endpoint: the password would travel in clear.
    Basic {
        user: String,
        password: String,
    },
    OAuth2(OAuth2ClientCredentials),
    /// A token obtained elsewhere.
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Ntlm(c) => f.debug_tuple("Ntlm").field(c).finish(),
            Auth::Basic { user, .. } => f.debug_struct("Basic").field("user", user).finish(),
            Auth::OAuth2(c) => f.debug_tuple("OAuth2").field(c).finish(),
            Auth::Bearer(_) => f.write_str("Bearer(..)"),
        }
    }
}

/// Everything that tunes a client; `ClientConfig::new` gives safe defaults.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://mail.example.fr/EWS/Exchange.asmx`.
    pub endpoint: Url,
    pub version: ServerVersion,
    pub auth: Auth,
    /// Extra trusted CA certificates (PEM), on top of the built-in roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Requests in flight at once against this endpoint.
    pub max_concurrency: usize,
    /// Attempts after the first, for transient failures.
    pub max_retries: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// A server-requested pause longer than this is returned as an error
    /// instead of being slept through.
    pub max_server_back_off: Duration,
    pub max_response_bytes: usize,
    pub timeout: Duration,
}

impl ClientConfig {
    pub fn new(endpoint: Url, version: ServerVersion, auth: Auth) -> Self {
        Self {
            endpoint,
            version,
            auth,
            ca_pem: None,
            // Exchange's default EWSMaxConcurrency is 10 per user; stay below.
            max_concurrency: 8,
            max_retries: 4,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_server_back_off: Duration::from_secs(300),
            max_response_bytes: super::xml::DEFAULT_MAX_BYTES,
            timeout: Duration::from_secs(100),
        }
    }
}

/// Per-call choices: whose mailbox, which zone, which backend.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    pub impersonation: Option<Impersonation>,
    /// A Windows zone id; sent only to Exchange 2010 and later.
    pub time_zone_context: Option<String>,
    /// X-AnchorMailbox: routes grouped subscriptions to one backend.
    pub anchor_mailbox: Option<String>,
    /// X-PreferServerAffinity: true.
    pub prefer_server_affinity: bool,
    /// Replaces the client's timeout for this call: a GetStreamingEvents
    /// response stays open for its ConnectionTimeout, far longer than an
    /// ordinary call may take.
    pub timeout: Option<Duration>,
}

/// Handshakes begun before a refused NTLM authentication is reported.
const NTLM_HANDSHAKES: u32 = 5;

struct Token {
    value: String,
    refresh_at: Instant,
}

/// An EWS endpoint client. Cheap to share behind an `Arc`.
pub struct Client {
    cfg: ClientConfig,
    clock: SharedClock,
    http: reqwest::Client,
    limit: Semaphore,
    /// Connections that completed an NTLM handshake, each a one-connection
    /// reqwest client, because NTLM authenticates the TCP connection.
    ntlm_idle: Mutex<Vec<reqwest::Client>>,
    token: tokio::sync::Mutex<Option<Token>>,
    server_info: Mutex<Option<ServerVersionInfo>>,
    /// X-BackEndOverrideCookie per anchor mailbox: Exchange Online sets it
    /// on Subscribe so that GetStreamingEvents reaches the same backend.
    affinity: Mutex<std::collections::HashMap<String, String>>,
}

const AFFINITY_COOKIE: &str = "X-BackEndOverrideCookie";
/// Anchors are per subscription group, so this bound is never reached in
/// normal use; it only stops a misbehaving server from growing the map.
const MAX_AFFINITY_ENTRIES: usize = 100_000;

fn http_builder(cfg: &ClientConfig) -> Result<reqwest::ClientBuilder, EwsError> {
    let mut b = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .connect_timeout(Duration::from_secs(15))
        .user_agent(concat!("resa/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = &cfg.ca_pem {
        for cert in
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| EwsError::Config(format!("CA bundle: {e}")))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    Ok(b)
}

fn transport(e: reqwest::Error) -> EwsError {
    // The error text names the URL but never credentials. Only a failed
    // connect proves the server never saw the request.
    if e.is_connect() || e.is_builder() {
        EwsError::Transport(e.to_string())
    } else {
        EwsError::Interrupted(e.to_string())
    }
}

impl Client {
    pub fn new(cfg: ClientConfig, clock: SharedClock) -> Result<Self, EwsError> {
        match cfg.endpoint.scheme() {
            "https" => {}
            "http" if !matches!(cfg.auth, Auth::Basic { .. }) => {}
            "http" => {
                return Err(EwsError::Config("Basic authentication needs an https endpoint".into()));
            }
            other => return Err(EwsError::Config(format!("unsupported scheme {other}"))),
        }
        if cfg.max_concurrency == 0 {
            return Err(EwsError::Config("max_concurrency must be at least 1".into()));
        }
        let http = http_builder(&cfg)?.build().map_err(transport)?;
        Ok(Self {
            limit: Semaphore::new(cfg.max_concurrency),
            cfg,
            clock,
            http,
            ntlm_idle: Mutex::new(Vec::new()),
            token: tokio::sync::Mutex::new(None),
            server_info: Mutex::new(None),
            affinity: Mutex::new(std::collections::HashMap::new()),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// What the server announced in its last response header.
    pub fn server_version_info(&self) -> Option<ServerVersionInfo> {
        self.server_info.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs one operation with retries for transient failures.
    pub async fn call<O: Operation>(&self, op: &O, opts: &CallOptions) -> Result<O::Response, EwsError> {
        let body = soap::write_request(op, &self.header_for(opts))?;
        let mut attempt = 0u32;
        loop {
            let result = self
                .attempt::<O>(&body, opts)
                .await
                .and_then(|r| match r.transient_error() {
                    // Every message was throttled: retry like a fault.
                    Some(e) if attempt < self.cfg.max_retries => Err(e),
                    _ => Ok(r),
                });
            match result {
                Ok(r) => return Ok(r),
                Err(e @ EwsError::Interrupted(_)) if !O::IDEMPOTENT => return Err(e),
                Err(e) if e.is_transient() && attempt < self.cfg.max_retries => {
                    let wait = match e.back_off() {
                        Some(b) if b > self.cfg.max_server_back_off => return Err(e),
                        Some(b) => b,
                        None => self.backoff(attempt),
                    };
                    tracing::debug!(
                        ews.operation = O::NAME,
                        ews.attempt = attempt,
                        ews.wait_ms = wait.as_millis() as u64,
                        error = %e,
                        "ews.retry"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Full-jitter exponential backoff: uniform in [d/2, d], d doubling.
    fn backoff(&self, attempt: u32) -> Duration {
        let d = self
            .cfg
            .base_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cfg.max_backoff);
        let ms = d.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms.max(1)))
    }

    /// Sends a serialized request with this client's authentication.
    async fn send<O: Operation>(&self, body: &[u8], opts: &CallOptions) -> Result<reqwest::Response, EwsError> {
        let headers = self.headers::<O>(opts)?;
        let resp = match &self.cfg.auth {
            Auth::Ntlm(creds) => self.send_ntlm(creds, body, headers, opts).await?,
            Auth::Basic { user, password } => with_timeout(self.http.post(self.cfg.endpoint.clone()), opts)
                .headers(headers)
                .basic_auth(user, Some(password))
                .body(body.to_vec())
                .send()
                .await
                .map_err(transport)?,
            Auth::Bearer(token) => self.send_bearer(token, body, headers, opts).await?,
            Auth::OAuth2(oauth) => {
                let token = self.oauth_token(oauth).await?;
                let resp = self.send_bearer(&token, body, headers, opts).await?;
                if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
                    // The token may have been revoked early: fetch a new one next time.
                    *self.token.lock().await = None;
                }
                resp
            }
        };
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(EwsError::Unauthorized(format!("HTTP 401 from {}", O::NAME)));
        }
        self.remember_affinity(opts, resp.headers());
        Ok(resp)
    }

    fn remember_affinity(&self, opts: &CallOptions, headers: &HeaderMap) {
        let Some(anchor) = &opts.anchor_mailbox else {
            return;
        };
        let cookie = headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|pair| pair.trim_start().starts_with(AFFINITY_COOKIE));
        if let Some(pair) = cookie {
            let mut map = self.affinity.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() >= MAX_AFFINITY_ENTRIES {
                map.clear();
            }
            map.insert(anchor.to_lowercase(), pair.trim().to_owned());
        }
    }

    fn header_for(&self, opts: &CallOptions) -> RequestHeader {
        RequestHeader {
            version: self.cfg.version,
            impersonation: opts.impersonation.clone(),
            // TimeZoneContext does not exist before 2010: leave it out there.
            time_zone_context: opts
                .time_zone_context
                .clone()
                .filter(|_| self.cfg.version >= ServerVersion::Exchange2010_SP2),
        }
    }

    /// Opens a GetStreamingEvents response and returns a reader of its
    /// envelopes. The connection is not counted against the concurrency
    /// limit: it stays open for up to `connection_timeout_minutes`.
    pub async fn open_stream(&self, op: &GetStreamingEvents, opts: &CallOptions) -> Result<EventStream, EwsError> {
        let body = soap::write_request(op, &self.header_for(opts))?;
        let resp = self.send::<GetStreamingEvents>(&body, opts).await?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = read_capped(resp, self.cfg.max_response_bytes).await?;
            return match soap::read_response::<GetStreamingEvents>(&bytes, bytes.len()) {
                Err(e @ EwsError::Fault { .. }) => Err(e),
                _ => Err(http_error(status, &bytes)),
            };
        }
        Ok(EventStream {
            resp,
            buf: Vec::new(),
            max_bytes: self.cfg.max_response_bytes,
        })
    }

    async fn attempt<O: Operation>(&self, body: &[u8], opts: &CallOptions) -> Result<O::Response, EwsError> {
        let _permit = self
            .limit
            .acquire()
            .await
            .map_err(|_| EwsError::Transport("client closed".into()))?;
        let resp = self.send::<O>(body, opts).await?;
        let status = resp.status();
        let bytes = read_capped(resp, self.cfg.max_response_bytes).await?;
        // Exchange sends SOAP faults with HTTP 500: read the envelope first.
        match soap::read_response::<O>(&bytes, self.cfg.max_response_bytes) {
            Ok((info, r)) => {
                if let Some(info) = info {
                    *self.server_info.lock().unwrap_or_else(|e| e.into_inner()) = Some(info);
                }
                if status.is_success() {
                    Ok(r)
                } else {
                    Err(http_error(status, &bytes))
                }
            }
            Err(e @ EwsError::Fault { .. }) => Err(e),
            Err(_) if !status.is_success() => Err(http_error(status, &bytes)),
            Err(e) => Err(e),
        }
    }

    fn headers<O: Operation>(&self, opts: &CallOptions) -> Result<HeaderMap, EwsError> {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"));
        let action = format!(
            "\"http://schemas.microsoft.com/exchange/services/2006/messages/{}\"",
            O::NAME
        );
        h.insert(
            "SOAPAction",
            HeaderValue::from_str(&action).map_err(|e| EwsError::Config(e.to_string()))?,
        );
        if let Some(a) = &opts.anchor_mailbox {
            h.insert(
                "X-AnchorMailbox",
                HeaderValue::from_str(a).map_err(|e| EwsError::Config(e.to_string()))?,
            );
        }
        if opts.prefer_server_affinity {
            h.insert("X-PreferServerAffinity", HeaderValue::from_static("true"));
        }
        if let Some(anchor) = &opts.anchor_mailbox {
            let map = self.affinity.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(cookie) = map.get(&anchor.to_lowercase())
                && let Ok(v) = HeaderValue::from_str(cookie)
            {
                h.insert(reqwest::header::COOKIE, v);
            }
        }
        Ok(h)
    }

    async fn send_bearer(
        &self,
        token: &str,
        body: &[u8],
        headers: HeaderMap,
        opts: &CallOptions,
    ) -> Result<reqwest::Response, EwsError> {
        with_timeout(self.http.post(self.cfg.endpoint.clone()), opts)
            .headers(headers)
            .bearer_auth(token)
            .body(body.to_vec())
            .send()
            .await
            .map_err(transport)
    }

    async fn oauth_token(&self, oauth: &OAuth2ClientCredentials) -> Result<String, EwsError> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref()
            && crate::clock::monotonic() < t.refresh_at
        {
            return Ok(t.value.clone());
        }
        let resp = self
            .http
            .post(oauth.token_url.clone())
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", oauth.client_id.as_str()),
                ("client_secret", oauth.client_secret.as_str()),
                ("scope", oauth.scope.as_str()),
            ])
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        let bytes = read_capped(resp, 64 * 1024).await?;
        if !status.is_success() {
            return Err(EwsError::Unauthorized(format!(
                "token endpoint answered HTTP {}",
                status.as_u16()
            )));
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let t: TokenResponse =
            serde_json::from_slice(&bytes).map_err(|e| EwsError::Unauthorized(format!("token response: {e}")))?;
        // Refresh a minute early so a token never expires mid-request.
        let life = Duration::from_secs(t.expires_in.unwrap_or(3600).saturating_sub(60));
        *slot = Some(Token {
            value: t.access_token.clone(),
            refresh_at: crate::clock::monotonic() + life,
        });
        Ok(t.access_token)
    }

    fn ntlm_connection(&self) -> Result<(reqwest::Client, bool), EwsError> {
        if let Some(c) = self.ntlm_idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok((c, true));
        }
        // One idle connection per client and HTTP/1.1 only: the handshake's
        // three requests must share one TCP connection.
        let c = http_builder(&self.cfg)?
            .http1_only()
            .pool_max_idle_per_host(1)
            .build()
            .map_err(transport)?;
        Ok((c, false))
    }

    async fn send_ntlm(
        &self,
        creds: &NtlmCredentials,
        body: &[u8],
        headers: HeaderMap,
        opts: &CallOptions,
    ) -> Result<reqwest::Response, EwsError> {
        let (conn, authenticated) = self.ntlm_connection()?;
        let post = || with_timeout(conn.post(self.cfg.endpoint.clone()), opts).headers(headers.clone());
        if authenticated {
            let resp = post().body(body.to_vec()).send().await.map_err(transport)?;
            if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
                self.keep_ntlm(conn);
                return Ok(resp);
            }
            // The server dropped the authenticated connection: handshake again.
            drain(resp).await;
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        // NTLM authenticates one TCP connection. The pooled client may open a
        // new connection for the AUTHENTICATE message when the one that
        // carried the challenge is not back in the pool yet; the server then
        // refuses it with a 401. Such a handshake is begun again, a few times.
        let mut attempt = 0u32;
        loop {
            let negotiate = format!("NTLM {}", b64.encode(ntlm::negotiate_message()));
            let resp = post()
                .header(AUTHORIZATION, negotiate)
                .body(Vec::new())
                .send()
                .await
                .map_err(transport)?;
            if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
                return Err(EwsError::Unauthorized(format!(
                    "NTLM negotiate answered HTTP {}",
                    resp.status().as_u16()
                )));
            }
            let challenge = resp
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|v| v.strip_prefix("NTLM "))
                .map(|c| b64.decode(c.trim()))
                .ok_or_else(|| EwsError::Unauthorized("no NTLM challenge offered".into()))?
                .map_err(|_| EwsError::Unauthorized("NTLM challenge is not base64".into()))?;
            let challenge = Challenge::parse(&challenge)?;
            drain(resp).await;
            // Let the connection go back to the pool before the next request;
            // on a busy machine that can take longer than a few yields, so a
            // handshake begun again waits a little longer each time.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
            }
            let client_challenge: [u8; 8] = rand::rng().random();
            let now = ntlm::filetime_from_unix(self.clock.now().timestamp());
            let auth = ntlm::authenticate_message(creds, &challenge, client_challenge, now);
            let resp = post()
                .header(AUTHORIZATION, format!("NTLM {}", b64.encode(auth)))
                .body(body.to_vec())
                .send()
                .await
                .map_err(transport)?;
            if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
                self.keep_ntlm(conn);
                return Ok(resp);
            }
            attempt += 1;
            if attempt >= NTLM_HANDSHAKES {
                return Ok(resp);
            }
            drain(resp).await;
        }
    }

    fn keep_ntlm(&self, conn: reqwest::Client) {
        let mut idle = self.ntlm_idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.cfg.max_concurrency {
            idle.push(conn);
        }
    }
}

fn with_timeout(b: reqwest::RequestBuilder, opts: &CallOptions) -> reqwest::RequestBuilder {
    match opts.timeout {
        Some(t) => b.timeout(t),
        None => b,
    }
}

/// Reads a response body, refusing more than `limit` bytes.
async fn read_capped(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, EwsError> {
    if resp.content_length().is_some_and(|l| l > limit as u64) {
        return Err(EwsError::TooLarge { limit });
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        if out.len() + chunk.len() > limit {
            return Err(EwsError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Reads and drops a small body so the connection can be reused.
async fn drain(resp: reqwest::Response) {
    let _ = read_capped(resp, 1 << 20).await;
}

fn http_error(status: reqwest::StatusCode, body: &[u8]) -> EwsError {
    let excerpt: String = String::from_utf8_lossy(body).chars().take(200).collect();
    EwsError::Http {
        status: status.as_u16(),
        body_excerpt: excerpt,
    }
}

/// The envelopes of an open GetStreamingEvents response, read on demand
/// (no task is spawned: the caller's loop owns the connection).
pub struct EventStream {
    resp: reqwest::Response,
    buf: Vec<u8>,
    max_bytes: usize,
}

impl EventStream {
    /// The next envelope's events; `None` when the server closed the
    /// response. A ConnectionStatus of Closed also means: open a new one.
    pub async fn next(&mut self) -> Option<Result<StreamingEvents, EwsError>> {
        loop {
            let (envelopes, used) = split_envelopes(&self.buf);
            if let Some(first) = envelopes.first() {
                let end = first.len();
                let parsed =
                    soap::read_response::<GetStreamingEvents>(first, self.max_bytes).and_then(|(_, r)| r.into_single());
                self.buf.drain(..end);
                return Some(parsed);
            }
            debug_assert_eq!(used, 0);
            match self.resp.chunk().await {
                Ok(Some(chunk)) => {
                    if self.buf.len() + chunk.len() > self.max_bytes {
                        return Some(Err(EwsError::TooLarge { limit: self.max_bytes }));
                    }
                    self.buf.extend_from_slice(&chunk);
                }
                Ok(None) => return None,
                Err(e) => return Some(Err(transport(e))),
            }
        }
    }
}

/// Shares one client per endpoint.
pub type SharedClient = Arc<Client>;
