//! The HTTP client against a small in-test HTTP/1.1 server on loopback:
//! the NTLM handshake on one kept-alive connection, retries on
//! ErrorServerBusy, size caps and malformed answers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::client::{Auth, CallOptions, Client, ClientConfig};
use super::error::{EwsError, ResponseCode};
use super::item::{BaseShape, Shape};
use super::ntlm::{self, NtlmCredentials};
use super::ops::get_folder::{Folder, Folders, GetFolder, GetFolderResponse};
use super::soap::{self, Fault, ResponseMessage, ResponseMessages, ServerVersion, ServerVersionInfo};
use super::types::{DistinguishedFolder, FolderRef, ItemId};

struct Request {
    conn: usize,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

async fn read_request(s: &mut TcpStream, conn: usize) -> Option<Request> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let headers: Vec<(String, String)> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    s.read_exact(&mut body).await.ok()?;
    let path = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_owned();
    Some(Request {
        conn,
        path,
        headers,
        body,
    })
}

/// Serves until the test ends; returns the endpoint URL.
async fn serve(handler: Handler) -> url::Url {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
    tokio::spawn(async move {
        let mut next = 0usize;
        while let Ok((mut s, _)) = listener.accept().await {
            next += 1;
            let conn = next;
            let handler = handler.clone();
            tokio::spawn(async move {
                while let Some(req) = read_request(&mut s, conn).await {
                    let reply = handler(&req);
                    let mut out = format!(
                        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: keep-alive\r\n",
                        reply.status,
                        reply.body.len()
                    );
                    for (k, v) in &reply.headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    let mut bytes = out.into_bytes();
                    bytes.extend_from_slice(&reply.body);
                    if s.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url::Url::parse(&format!("http://{addr}/EWS/Exchange.asmx")).unwrap_or_else(|e| panic!("url: {e}"))
}

fn folder_response() -> Vec<u8> {
    let resp = GetFolderResponse(ResponseMessages {
        messages: vec![ResponseMessage::success(Folders {
            folders: vec![Folder {
                element: "Folder".into(),
                folder_id: Some(ItemId::new("AAMkInbox=")),
                display_name: Some("Inbox".into()),
                ..Folder::default()
            }],
        })],
    });
    let info = ServerVersionInfo {
        major_version: 14,
        minor_version: 3,
        major_build_number: 123,
        minor_build_number: 3,
        version: Some("Exchange2010_SP2".into()),
    };
    soap::write_response(&resp, Some(&info), ServerVersion::Exchange2010_SP2).unwrap_or_default()
}

fn get_inbox() -> GetFolder {
    GetFolder {
        folder_shape: Shape::new(BaseShape::IdOnly),
        folder_ids: vec![FolderRef::distinguished(DistinguishedFolder::Inbox)],
    }
}

fn ok(body: Vec<u8>) -> Reply {
    Reply {
        status: 200,
        headers: vec![("Content-Type".into(), "text/xml; charset=utf-8".into())],
        body,
    }
}

const CHALLENGE: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

fn type2() -> Vec<u8> {
    let target_info: Vec<u8> = [2u16.to_le_bytes(), 4u16.to_le_bytes()]
        .concat()
        .into_iter()
        .chain(*b"D\0O\0")
        .chain([0, 0, 0, 0])
        .collect();
    let mut m = b"NTLMSSP\0".to_vec();
    m.extend_from_slice(&2u32.to_le_bytes());
    m.extend_from_slice(&[0, 0, 0, 0, 48, 0, 0, 0]);
    m.extend_from_slice(&0xe28a_8235u32.to_le_bytes());
    m.extend_from_slice(&CHALLENGE);
    m.extend_from_slice(&[0; 8]);
    let len = target_info.len() as u16;
    m.extend_from_slice(&len.to_le_bytes());
    m.extend_from_slice(&len.to_le_bytes());
    m.extend_from_slice(&48u32.to_le_bytes());
    m.extend_from_slice(&target_info);
    m
}

fn field(m: &[u8], at: usize) -> Vec<u8> {
    let len = u16::from_le_bytes([m[at], m[at + 1]]) as usize;
    let off = u32::from_le_bytes([m[at + 4], m[at + 5], m[at + 6], m[at + 7]]) as usize;
    m.get(off..off + len).map(<[u8]>::to_vec).unwrap_or_default()
}

/// Checks an AUTHENTICATE message the way a server does: recompute the
/// NTProofStr from the known password.
fn verify_type3(m: &[u8]) -> bool {
    let nt = field(m, 20);
    if nt.len() < 16 {
        return false;
    }
    let utf16 = |b: Vec<u8>| {
        String::from_utf16_lossy(
            &b.chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
                .collect::<Vec<_>>(),
        )
    };
    let domain = utf16(field(m, 28));
    let user = utf16(field(m, 36));
    let key = ntlm::ntowf_v2("Sésame", &user, &domain);
    use hmac::Mac;
    let Ok(mut mac) = hmac::Hmac::<md5::Md5>::new_from_slice(&key) else {
        return false;
    };
    mac.update(&CHALLENGE);
    mac.update(&nt[16..]);
    let proof: [u8; 16] = mac.finalize().into_bytes().into();
    user == "salle" && domain == "MAIRIE" && proof.as_slice() == &nt[..16]
}

#[derive(Default)]
struct NtlmState {
    challenged_conn: Option<usize>,
    authenticated: Vec<usize>,
    handshakes: usize,
    requests: usize,
    bad_auth: usize,
}

fn ntlm_handler(state: Arc<Mutex<NtlmState>>) -> Handler {
    Arc::new(move |req: &Request| {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.requests += 1;
        let b64 = base64::engine::general_purpose::STANDARD;
        let unauthorized = |h: Option<String>| Reply {
            status: 401,
            headers: vec![("WWW-Authenticate".into(), h.unwrap_or_else(|| "NTLM".into()))],
            body: Vec::new(),
        };
        match req.header("Authorization").and_then(|a| a.strip_prefix("NTLM ")) {
            None if st.authenticated.contains(&req.conn) => ok(folder_response()),
            None => unauthorized(None),
            Some(token) => {
                let msg = b64.decode(token).unwrap_or_default();
                match msg.get(8) {
                    Some(1) => {
                        st.challenged_conn = Some(req.conn);
                        st.handshakes += 1;
                        unauthorized(Some(format!("NTLM {}", b64.encode(type2()))))
                    }
                    Some(3) if st.challenged_conn == Some(req.conn) && verify_type3(&msg) => {
                        st.authenticated.push(req.conn);
                        ok(folder_response())
                    }
                    _ => {
                        st.bad_auth += 1;
                        unauthorized(None)
                    }
                }
            }
        }
    })
}

fn client(url: url::Url, auth: Auth) -> Client {
    let mut cfg = ClientConfig::new(url, ServerVersion::Exchange2010_SP2, auth);
    cfg.base_backoff = Duration::from_millis(5);
    cfg.max_backoff = Duration::from_millis(20);
    Client::new(cfg, crate::clock::system()).unwrap_or_else(|e| panic!("client: {e}"))
}

#[tokio::test]
async fn ntlm_handshake_on_one_connection_then_reuse() {
    let state = Arc::new(Mutex::new(NtlmState::default()));
    let url = serve(ntlm_handler(state.clone())).await;
    let creds = NtlmCredentials::from_login("MAIRIE\\salle", "Sésame");
    let c = client(url, Auth::Ntlm(creds));
    for _ in 0..3 {
        let r = c.call(&get_inbox(), &CallOptions::default()).await;
        let folders = r
            .and_then(GetFolderResponse::into_single)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(folders.folders.len(), 1);
    }
    let st = state.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(st.bad_auth, 0);
    // One handshake, then the authenticated connection carries the rest.
    assert_eq!(st.handshakes, 1);
    assert_eq!(st.requests, 4);
    assert_eq!(
        c.server_version_info().map(|i| i.server_version()),
        Some(ServerVersion::Exchange2010_SP2)
    );
}

#[tokio::test]
async fn wrong_ntlm_password_is_unauthorized() {
    let state = Arc::new(Mutex::new(NtlmState::default()));
    let url = serve(ntlm_handler(state)).await;
    let c = client(url, Auth::Ntlm(NtlmCredentials::from_login("MAIRIE\\salle", "faux")));
    let r = c.call(&get_inbox(), &CallOptions::default()).await;
    assert!(matches!(r, Err(EwsError::Unauthorized(_))), "{r:?}");
}

#[tokio::test]
async fn server_busy_back_off_is_honoured_then_retried() {
    let calls = Arc::new(Mutex::new(Vec::<Request>::new()));
    let seen = calls.clone();
    let url = serve(Arc::new(move |req: &Request| {
        let mut calls = seen.lock().unwrap_or_else(|e| e.into_inner());
        calls.push(Request {
            conn: req.conn,
            path: req.path.clone(),
            headers: req.headers.clone(),
            body: req.body.clone(),
        });
        if calls.len() == 1 {
            let fault = Fault {
                fault_code: "a:ErrorServerBusy".into(),
                fault_string: "busy".into(),
                response_code: ResponseCode::ErrorServerBusy,
                message: None,
                back_off: Some(Duration::from_millis(30)),
            };
            Reply {
                status: 500,
                headers: vec![],
                body: fault.write_envelope(None).unwrap_or_default(),
            }
        } else {
            ok(folder_response())
        }
    }))
    .await;
    let c = client(url, Auth::Bearer("jeton".into()));
    let opts = CallOptions {
        anchor_mailbox: Some("salle@x.fr".into()),
        prefer_server_affinity: true,
        ..CallOptions::default()
    };
    let started = crate::clock::monotonic();
    let r = c.call(&get_inbox(), &opts).await;
    assert!(r.is_ok(), "{r:?}");
    assert!(started.elapsed() >= Duration::from_millis(30));
    let calls = calls.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(calls.len(), 2);
    let first = &calls[0];
    assert_eq!(first.header("Authorization"), Some("Bearer jeton"));
    assert_eq!(first.header("X-AnchorMailbox"), Some("salle@x.fr"));
    assert_eq!(first.header("X-PreferServerAffinity"), Some("true"));
    assert!(String::from_utf8_lossy(&first.body).contains("Exchange2010_SP2"));
}

#[tokio::test]
async fn too_long_a_back_off_is_returned_not_slept() {
    let url = serve(Arc::new(|_: &Request| {
        let fault = Fault {
            fault_code: "a:ErrorServerBusy".into(),
            fault_string: "busy".into(),
            response_code: ResponseCode::ErrorServerBusy,
            message: None,
            back_off: Some(Duration::from_secs(3600)),
        };
        Reply {
            status: 500,
            headers: vec![],
            body: fault.write_envelope(None).unwrap_or_default(),
        }
    }))
    .await;
    let c = client(url, Auth::Bearer("t".into()));
    let r = c.call(&get_inbox(), &CallOptions::default()).await;
    let err = r.err();
    assert_eq!(
        err.as_ref().and_then(EwsError::back_off),
        Some(Duration::from_secs(3600))
    );
}

#[tokio::test]
async fn bad_answers_are_typed_errors() {
    let url = serve(Arc::new(|req: &Request| match req.header("X-AnchorMailbox") {
        Some("garbage") => ok(b"<html>not soap".to_vec()),
        Some("huge") => ok(vec![b' '; 2048]),
        _ => Reply {
            status: 503,
            headers: vec![],
            body: b"Service Unavailable".to_vec(),
        },
    }))
    .await;
    let mut cfg = ClientConfig::new(url, ServerVersion::Exchange2016, Auth::Bearer("t".into()));
    cfg.max_response_bytes = 1024;
    cfg.base_backoff = Duration::from_millis(1);
    cfg.max_retries = 2;
    let c = Client::new(cfg, crate::clock::system()).unwrap_or_else(|e| panic!("{e}"));
    let with = |a: &str| CallOptions {
        anchor_mailbox: Some(a.into()),
        ..CallOptions::default()
    };
    let r = c.call(&get_inbox(), &with("garbage")).await;
    assert!(matches!(r, Err(EwsError::Malformed(_))), "{r:?}");
    let r = c.call(&get_inbox(), &with("huge")).await;
    assert!(matches!(r, Err(EwsError::TooLarge { .. })), "{r:?}");
    let r = c.call(&get_inbox(), &with("down")).await;
    assert!(matches!(r, Err(EwsError::Http { status: 503, .. })), "{r:?}");
}

#[test]
fn basic_auth_needs_tls() {
    let url = url::Url::parse("http://ex.example/EWS/Exchange.asmx").unwrap_or_else(|e| panic!("{e}"));
    let cfg = ClientConfig::new(
        url,
        ServerVersion::Exchange2016,
        Auth::Basic {
            user: "u".into(),
            password: "p".into(),
        },
    );
    assert!(matches!(
        Client::new(cfg, crate::clock::system()),
        Err(EwsError::Config(_))
    ));
}

#[tokio::test]
async fn streaming_response_yields_each_envelope() {
    use super::ops::get_streaming_events::{
        ConnectionStatus, GetStreamingEvents, GetStreamingEventsResponse, StreamingEvents,
    };
    use super::ops::notification::{Event, Notification};
    let envelope = |status: ConnectionStatus| {
        let resp = GetStreamingEventsResponse(ResponseMessages {
            messages: vec![ResponseMessage::success(StreamingEvents {
                notifications: vec![Notification {
                    subscription_id: "sub".into(),
                    events: vec![Event::status("wm")],
                    ..Notification::default()
                }],
                error_subscription_ids: vec![],
                connection_status: Some(status),
            })],
        });
        soap::write_response(&resp, None, ServerVersion::Exchange2013_SP1).unwrap_or_default()
    };
    let mut body = envelope(ConnectionStatus::Ok);
    body.extend(envelope(ConnectionStatus::Closed));
    let url = serve(Arc::new(move |_: &Request| ok(body.clone()))).await;
    let c = client(url, Auth::Bearer("t".into()));
    let op = GetStreamingEvents {
        subscription_ids: vec!["sub".into()],
        connection_timeout_minutes: 1,
    };
    let mut stream = c
        .open_stream(&op, &CallOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let first = stream.next().await.and_then(Result::ok);
    assert_eq!(first.and_then(|f| f.connection_status), Some(ConnectionStatus::Ok));
    let second = stream.next().await.and_then(Result::ok);
    assert_eq!(second.and_then(|f| f.connection_status), Some(ConnectionStatus::Closed));
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn oauth2_token_is_fetched_once_and_sent() {
    use super::client::OAuth2ClientCredentials;
    let token_calls = Arc::new(Mutex::new(0usize));
    let counter = token_calls.clone();
    let url = serve(Arc::new(move |req: &Request| {
        if req.path == "/token" {
            *counter.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            let form = String::from_utf8_lossy(&req.body).into_owned();
            assert!(form.contains("grant_type=client_credentials"), "{form}");
            return ok(br#"{"access_token":"abc","token_type":"Bearer","expires_in":3599}"#.to_vec());
        }
        if req.header("Authorization") == Some("Bearer abc") {
            ok(folder_response())
        } else {
            Reply {
                status: 401,
                headers: vec![],
                body: Vec::new(),
            }
        }
    }))
    .await;
    let mut token_url = url.clone();
    token_url.set_path("/token");
    let c = client(
        url,
        Auth::OAuth2(OAuth2ClientCredentials {
            token_url,
            client_id: "resa".into(),
            client_secret: "secret".into(),
            scope: "https://outlook.office365.com/.default".into(),
        }),
    );
    for _ in 0..2 {
        let r = c.call(&get_inbox(), &CallOptions::default()).await;
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(*token_calls.lock().unwrap_or_else(|e| e.into_inner()), 1);
}

#[tokio::test]
async fn throttled_response_messages_are_retried() {
    let calls = Arc::new(Mutex::new(0usize));
    let counter = calls.clone();
    let url = serve(Arc::new(move |_: &Request| {
        let mut n = counter.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        if *n == 1 {
            let resp = GetFolderResponse(ResponseMessages {
                messages: vec![ResponseMessage::error(
                    ResponseCode::ErrorTooManyObjectsOpened,
                    "Too many concurrent connections opened.",
                )],
            });
            ok(soap::write_response(&resp, None, ServerVersion::Exchange2016).unwrap_or_default())
        } else {
            ok(folder_response())
        }
    }))
    .await;
    let c = client(url, Auth::Bearer("t".into()));
    let r = c.call(&get_inbox(), &CallOptions::default()).await;
    assert!(r.and_then(GetFolderResponse::into_single).is_ok());
    assert_eq!(*calls.lock().unwrap_or_else(|e| e.into_inner()), 2);
}

#[tokio::test]
async fn time_zone_context_is_left_out_for_2007() {
    let bodies = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = bodies.clone();
    let url = serve(Arc::new(move |req: &Request| {
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(String::from_utf8_lossy(&req.body).into_owned());
        ok(folder_response())
    }))
    .await;
    let opts = CallOptions {
        time_zone_context: Some("Romance Standard Time".into()),
        impersonation: Some(super::soap::Impersonation::PrimarySmtpAddress("salle@x.fr".into())),
        ..CallOptions::default()
    };
    for v in [ServerVersion::Exchange2007_SP1, ServerVersion::Exchange2013_SP1] {
        let cfg = ClientConfig::new(url.clone(), v, Auth::Bearer("t".into()));
        let c = Client::new(cfg, crate::clock::system()).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.call(&get_inbox(), &opts).await.is_ok());
    }
    let bodies = bodies.lock().unwrap_or_else(|e| e.into_inner());
    assert!(!bodies[0].contains("TimeZoneContext"));
    assert!(bodies[1].contains("TimeZoneContext"));
    assert!(bodies.iter().all(|b| b.contains("<t:PrimarySmtpAddress>salle@x.fr<")));
}

#[tokio::test]
async fn backend_cookie_follows_the_anchor_mailbox() {
    let cookies = Arc::new(Mutex::new(Vec::<Option<String>>::new()));
    let seen = cookies.clone();
    let url = serve(Arc::new(move |req: &Request| {
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(req.header("Cookie").map(str::to_owned));
        let mut r = ok(folder_response());
        r.headers.push((
            "Set-Cookie".into(),
            "X-BackEndOverrideCookie=BE1~42; path=/; secure".into(),
        ));
        r
    }))
    .await;
    let c = client(url, Auth::Bearer("t".into()));
    let opts = CallOptions {
        anchor_mailbox: Some("Salle@x.fr".into()),
        prefer_server_affinity: true,
        ..CallOptions::default()
    };
    for _ in 0..2 {
        assert!(c.call(&get_inbox(), &opts).await.is_ok());
    }
    assert!(c.call(&get_inbox(), &CallOptions::default()).await.is_ok());
    let cookies = cookies.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(
        *cookies,
        vec![None, Some("X-BackEndOverrideCookie=BE1~42".to_owned()), None]
    );
}

#[tokio::test]
async fn interrupted_sends_are_not_repeated() {
    use super::ops::create_item::{CreateItem, ResponseObjectKind};
    // A server that reads the request and hangs up without answering.
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let seen = Arc::new(Mutex::new(0usize));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            if read_request(&mut s, 0).await.is_some() {
                *counter.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            }
            drop(s);
        }
    });
    let url = url::Url::parse(&format!("http://{addr}/EWS/Exchange.asmx")).unwrap_or_else(|e| panic!("{e}"));
    let c = client(url, Auth::Bearer("t".into()));
    let accept = CreateItem::respond(ResponseObjectKind::Accept, ItemId::new("AAMk="), None);
    let r = c.call(&accept, &CallOptions::default()).await;
    assert!(matches!(r, Err(EwsError::Interrupted(_))), "{r:?}");
    assert_eq!(*seen.lock().unwrap_or_else(|e| e.into_inner()), 1);
    // A read may be repeated.
    let r = c.call(&get_inbox(), &CallOptions::default()).await;
    assert!(r.is_err());
    assert!(*seen.lock().unwrap_or_else(|e| e.into_inner()) > 2);
}

#[tokio::test]
async fn concurrency_is_capped_per_endpoint() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (fl, pk) = (in_flight.clone(), peak.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (fl, pk) = (fl.clone(), pk.clone());
            tokio::spawn(async move {
                while read_request(&mut s, 0).await.is_some() {
                    let now = fl.fetch_add(1, Ordering::SeqCst) + 1;
                    pk.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    fl.fetch_sub(1, Ordering::SeqCst);
                    let body = folder_response();
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                    let mut out = head.into_bytes();
                    out.extend_from_slice(&body);
                    if s.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let url = url::Url::parse(&format!("http://{addr}/EWS/Exchange.asmx")).unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = ClientConfig::new(url, ServerVersion::Exchange2016, Auth::Bearer("t".into()));
    cfg.max_concurrency = 2;
    let c = Arc::new(Client::new(cfg, crate::clock::system()).unwrap_or_else(|e| panic!("{e}")));
    let calls = (0..6).map(|_| {
        let c = c.clone();
        async move { c.call(&get_inbox(), &CallOptions::default()).await }
    });
    let results = futures_join_all(calls).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

/// Awaits all futures concurrently on the current task (no extra crate).
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    // One poll_fn drives every pinned future, so they all run at once.
    let mut pending: Vec<_> = futs.map(Box::pin).map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().flatten());
    out
}
