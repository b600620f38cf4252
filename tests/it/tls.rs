//! TLS towards Exchange: certificates are always verified, and an internal
//! certificate authority can be added per endpoint. The server is OpenSSL's
//! test server with a certificate signed by a CA made for the test.

use resa::ews::client::{Auth, CallOptions, Client, ClientConfig};
use resa::ews::error::EwsError;
use resa::ews::item::{BaseShape, Shape};
use resa::ews::ops::get_folder::GetFolder;
use resa::ews::soap::ServerVersion;
use resa::ews::types::{DistinguishedFolder, FolderRef};
use std::path::Path;
use std::process::{Command, Stdio};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed (Debian package openssl)");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA, and a server certificate for 127.0.0.1 signed by it.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Test CA resa",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=mail.test",
            "-keyout",
            "key.pem",
            "-out",
            "srv.csr",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ],
    );
}

/// A TLS server that answers every request with HTTP 503, as a server
/// behind a busy load balancer would: enough to see the handshake succeed.
async fn start_server(dir: &Path) -> u16 {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let certs = vec![CertificateDer::from_pem_file(dir.join("cert.pem")).expect("cert")];
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).expect("key");
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 65536];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn client(port: u16, ca: Option<Vec<u8>>) -> Client {
    let url = url::Url::parse(&format!("https://127.0.0.1:{port}/EWS/Exchange.asmx")).expect("url");
    // Basic, which the client allows over TLS only: one plain request.
    let auth = Auth::Basic {
        user: "svc-resa".into(),
        password: "pw".into(),
    };
    let mut cfg = ClientConfig::new(url, ServerVersion::Exchange2010_SP2, auth);
    cfg.ca_pem = ca;
    cfg.max_retries = 0;
    Client::new(cfg, resa::clock::system()).expect("client")
}

fn get_inbox() -> GetFolder {
    GetFolder {
        folder_shape: Shape::new(BaseShape::IdOnly),
        folder_ids: vec![FolderRef::distinguished(DistinguishedFolder::Inbox)],
    }
}

#[tokio::test]
async fn an_unknown_certificate_authority_is_refused_and_a_configured_one_trusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    certificates(dir.path());
    let port = start_server(dir.path()).await;

    // Without the CA the handshake fails: verification is never skipped.
    let refused = client(port, None).call(&get_inbox(), &CallOptions::default()).await;
    match refused {
        Err(EwsError::Transport(text)) => assert!(!text.is_empty()),
        other => panic!("an untrusted certificate must fail at the transport: {other:?}"),
    }

    // With the internal CA configured, TLS succeeds and the server's HTTP
    // answer reaches the client.
    let ca = std::fs::read(dir.path().join("ca.pem")).expect("ca");
    let trusted = client(port, Some(ca)).call(&get_inbox(), &CallOptions::default()).await;
    match trusted {
        Err(EwsError::Http { status, .. }) => assert_eq!(status, 503),
        other => panic!("TLS should succeed and show the server's 503: {other:?}"),
    }
}
