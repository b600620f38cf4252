//! The HTTP/1.1 server: one hyper connection task per TCP connection, so
//! that NTLM can authenticate the connection as IIS does, routing to the
//! EWS endpoint and to the control API, and the transport faults (a body
//! cut halfway).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::Shared;
use super::auth::{self, AuthStep, NtlmServer, Principal};

pub type Body = BoxBody<Bytes, std::io::Error>;

/// Requests larger than this are refused before they are read whole.
const MAX_BODY: usize = 8 * 1024 * 1024;

pub fn full(status: StatusCode, content_type: Option<&'static str>, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed());
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    r
}

/// Serves until `stop` turns true, then drops every connection.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                conns.spawn(async move {
                    let conn = Arc::new(Mutex::new(ConnState::default()));
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        let conn = conn.clone();
                        async move { Ok::<_, Infallible>(route(&shared, &conn, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            // Reap finished connections so the set does not grow forever.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    conns.shutdown().await;
}

/// What one TCP connection remembers.
#[derive(Default)]
struct ConnState {
    ntlm: NtlmServer,
    principal: Option<Principal>,
}

async fn route(shared: &Arc<Shared>, conn: &Mutex<ConnState>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if path.starts_with("/_sim/") || path == "/_sim" {
        return super::control::handle(shared, req).await;
    }
    if !path.eq_ignore_ascii_case("/EWS/Exchange.asmx") {
        return full(StatusCode::NOT_FOUND, None, Vec::new());
    }
    let principal = match authenticate(shared, conn, &req) {
        Ok(p) => p,
        Err(resp) => {
            // The body must be read so the connection can carry the next
            // handshake message.
            let _ = read_body(req).await;
            return *resp;
        }
    };
    let hints = hints(&req);
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(status) => return full(status, None, Vec::new()),
    };
    let reply = super::ews::handle(shared, &principal, &hints, &body).await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    respond(status, reply)
}

/// The routing headers Exchange's front end reads.
fn hints(req: &Request<Incoming>) -> super::ews::Hints {
    let h = req.headers();
    let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let backend_cookie = h
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case(super::ews::AFFINITY_COOKIE))
        .map(|(_, v)| v.to_owned());
    super::ews::Hints {
        anchor: text("X-AnchorMailbox"),
        prefer_affinity: text("X-PreferServerAffinity").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        backend_cookie,
    }
}

fn respond(status: StatusCode, reply: super::ews::Reply) -> Response<Body> {
    let cookie = reply.set_cookie.as_deref().and_then(|c| HeaderValue::from_str(c).ok());
    let mut r = respond_body(status, reply);
    if let Some(c) = cookie {
        r.headers_mut().append(hyper::header::SET_COOKIE, c);
    }
    r
}

fn respond_body(status: StatusCode, reply: super::ews::Reply) -> Response<Body> {
    if let Some(rx) = reply.stream {
        let mut r = Response::new(ChannelBody(rx).boxed());
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"));
        return r;
    }
    if reply.reset {
        return cut(status, reply.body);
    }
    let ct = (!reply.body.is_empty()).then_some("text/xml; charset=utf-8");
    full(status, ct, reply.body)
}

/// A response whose body stops halfway with an error, which makes hyper
/// drop the connection: the client sees a reset mid-response.
fn cut(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let half = body.len() / 2;
    let first = Bytes::copy_from_slice(body.get(..half).unwrap_or_default());
    let mut r = Response::new(
        CutBody {
            first: Some(first),
            failed: false,
        }
        .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"));
    r
}

/// A body fed chunk by chunk (streaming notifications); it ends when the
/// sender does, and an error cuts the connection.
struct ChannelBody(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| b.map(Frame::data)))
    }
}

/// Half a body, then an I/O error.
struct CutBody {
    first: Option<Bytes>,
    failed: bool,
}

impl hyper::body::Body for CutBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(b) = self.first.take() {
            return std::task::Poll::Ready(Some(Ok(Frame::data(b))));
        }
        if !self.failed {
            self.failed = true;
            return std::task::Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected reset",
            ))));
        }
        std::task::Poll::Ready(None)
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Vec<u8>, StatusCode> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes().to_vec()),
        Err(_) => Err(StatusCode::PAYLOAD_TOO_LARGE),
    }
}

fn unauthorized(extra: Option<String>) -> Response<Body> {
    let mut r = full(StatusCode::UNAUTHORIZED, None, Vec::new());
    let h = r.headers_mut();
    match extra {
        Some(challenge) => {
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                h.append(WWW_AUTHENTICATE, v);
            }
        }
        None => {
            h.append(WWW_AUTHENTICATE, HeaderValue::from_static("NTLM"));
            h.append(WWW_AUTHENTICATE, HeaderValue::from_static("Negotiate"));
            h.append(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"exchsim\""));
        }
    }
    r
}

fn authenticate(
    shared: &Shared,
    conn: &Mutex<ConnState>,
    req: &Request<Incoming>,
) -> Result<Principal, Box<Response<Body>>> {
    let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let accounts = shared.read(|w| w.accounts.clone());
    match header.as_deref().and_then(|h| h.split_once(' ')) {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("NTLM") || scheme.eq_ignore_ascii_case("Negotiate") => {
            let now = crate::ews::ntlm::filetime_from_unix(shared.clock.now().timestamp());
            match conn.ntlm.step(token, &accounts, now) {
                AuthStep::Challenge(c) => {
                    // Clients answer in the scheme they used.
                    let c = if scheme.eq_ignore_ascii_case("Negotiate") {
                        c.replacen("NTLM", "Negotiate", 1)
                    } else {
                        c
                    };
                    Err(Box::new(unauthorized(Some(c))))
                }
                AuthStep::Done(p) => {
                    conn.principal = Some(p.clone());
                    Ok(p)
                }
                AuthStep::Refused => {
                    conn.principal = None;
                    Err(Box::new(unauthorized(None)))
                }
            }
        }
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("Basic") => {
            auth::basic(token, &accounts).ok_or_else(|| Box::new(unauthorized(None)))
        }
        _ => conn.principal.clone().ok_or_else(|| Box::new(unauthorized(None))),
    }
}

/// Encodes `user:password` for Basic, for tests.
pub fn basic_header(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}
