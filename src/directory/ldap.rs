//! The LDAP client side: TLS connections (LDAPS or StartTLS, verified
//! against the configured CA), binds, paged searches and the rootDSE.
//!
//! Every operation has the directory's timeout. The connection's driver task
//! is owned by [`Session`] and aborted when the session is dropped, so no task
//! outlives its use.

use std::sync::Arc;
use std::time::Duration;

use ldap3::controls::{Control, ControlType, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Scope, SearchEntry};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use super::DirectoryError;
use super::settings::DirectorySettings;

/// LDAP result codes that are not errors for a search: sizeLimitExceeded
/// still returns the entries up to the limit.
const RC_SUCCESS: u32 = 0;
const RC_SIZE_LIMIT_EXCEEDED: u32 = 4;

/// An open, TLS-protected connection to one directory.
pub(crate) struct Session {
    ldap: Ldap,
    driver: tokio::task::JoinHandle<()>,
    directory: String,
    timeout: Duration,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// What the rootDSE says about the server, for incremental sync.
#[derive(Debug, Clone)]
pub(crate) struct RootDse {
    pub highest_committed_usn: Option<i64>,
    /// Identifies the DC: USNs are per DC, so a change of DC (fail-over to
    /// another one behind the same name) forces a full sync.
    pub server_id: Option<String>,
}

pub(crate) fn tls_config(settings: &DirectorySettings) -> Result<Arc<ClientConfig>, DirectoryError> {
    let tls = |reason: String| DirectoryError::Tls {
        directory: settings.name.clone(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    match &settings.ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| tls(format!("cannot read CA file {}: {e}", path.display())))?;
            for cert in certs {
                let cert = cert.map_err(|e| tls(format!("bad certificate in {}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| tls(format!("unusable CA certificate in {}: {e}", path.display())))?;
            }
        }
        None => {
            // Certificates the system store cannot parse are skipped; the
            // others still verify the server.
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err(tls("no CA certificate to verify the server with".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Maps a transport-level ldap3 error: TLS failures apart (a wrong CA is a
/// configuration problem, not an outage), the rest means "unreachable".
pub(crate) fn classify(directory: &str, e: LdapError) -> DirectoryError {
    let directory = directory.to_owned();
    match e {
        LdapError::Rustls { source } => DirectoryError::Tls {
            directory,
            reason: source.to_string(),
        },
        LdapError::DNSName { source } => DirectoryError::Tls {
            directory,
            reason: source.to_string(),
        },
        LdapError::Io { source } if source.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) => {
            DirectoryError::Tls {
                directory,
                reason: source.to_string(),
            }
        }
        LdapError::LdapResult { result } => DirectoryError::Ldap {
            directory,
            reason: result.to_string(),
        },
        other => DirectoryError::Unreachable {
            directory,
            reason: other.to_string(),
        },
    }
}

impl Session {
    /// Connects (and negotiates StartTLS when configured), without binding.
    pub(crate) async fn connect(settings: &DirectorySettings) -> Result<Session, DirectoryError> {
        settings.validate()?;
        let config = tls_config(settings)?;
        let conn_settings = LdapConnSettings::new()
            .set_conn_timeout(settings.timeout)
            .set_config(config)
            .set_starttls(settings.starttls);
        // The outer timeout also covers the StartTLS exchange and the TLS
        // handshake, which the connect timeout does not.
        let connected = tokio::time::timeout(
            settings.timeout,
            LdapConnAsync::with_settings(conn_settings, &settings.url),
        )
        .await
        .map_err(|_| DirectoryError::Unreachable {
            directory: settings.name.clone(),
            reason: format!("no TLS session within {:?}", settings.timeout),
        })?;
        let (conn, ldap) = connected.map_err(|e| classify(&settings.name, e))?;
        let directory = settings.name.clone();
        let driver = tokio::spawn({
            let directory = directory.clone();
            async move {
                if let Err(e) = conn.drive().await {
                    tracing::debug!(directory.name = %directory, error = %e, "LDAP connection closed");
                }
            }
        });
        Ok(Session {
            ldap,
            driver,
            directory,
            timeout: settings.timeout,
        })
    }

    /// Connects and binds as the service account.
    pub(crate) async fn service(settings: &DirectorySettings) -> Result<Session, DirectoryError> {
        let mut session = Session::connect(settings).await?;
        let result = session.bind(&settings.bind_dn, settings.bind_password.expose()).await?;
        if result.rc != RC_SUCCESS {
            return Err(DirectoryError::ServiceBind {
                directory: settings.name.clone(),
                reason: result.to_string(),
            });
        }
        Ok(session)
    }

    /// A simple bind; the result is returned whatever its code, so the caller
    /// can tell a refused password from a broken connection.
    pub(crate) async fn bind(&mut self, dn: &str, password: &str) -> Result<LdapResult, DirectoryError> {
        self.ldap
            .with_timeout(self.timeout)
            .simple_bind(dn, password)
            .await
            .map_err(|e| classify(&self.directory, e))
    }

    /// Reads the rootDSE attributes that incremental sync relies on.
    pub(crate) async fn root_dse(&mut self) -> Result<RootDse, DirectoryError> {
        let entries = self
            .search_page(
                "",
                Scope::Base,
                "(objectClass=*)",
                &["highestCommittedUSN", "dsServiceName"],
                None,
            )
            .await?
            .0;
        let entry = entries.into_iter().next();
        let get = |name: &str| {
            entry.as_ref().and_then(|e| {
                e.attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .and_then(|(_, v)| v.first().cloned())
            })
        };
        Ok(RootDse {
            highest_committed_usn: get("highestCommittedUSN").and_then(|v| v.parse().ok()),
            server_id: get("dsServiceName"),
        })
    }

    /// One search request, optionally with a paged-results cookie; returns
    /// the entries and the next cookie (empty when done).
    async fn search_page(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
        page: Option<(u32, Vec<u8>)>,
    ) -> Result<(Vec<SearchEntry>, Vec<u8>), DirectoryError> {
        let ldap = self.ldap.with_timeout(self.timeout);
        if let Some((size, cookie)) = page {
            ldap.with_controls(PagedResults {
                size: i32::try_from(size).unwrap_or(i32::MAX),
                cookie,
            });
        }
        let result = ldap
            .search(base, scope, filter, attrs.to_vec())
            .await
            .map_err(|e| classify(&self.directory, e))?;
        let (raw, status) = (result.0, result.1);
        if status.rc != RC_SUCCESS && status.rc != RC_SIZE_LIMIT_EXCEEDED {
            return Err(DirectoryError::Ldap {
                directory: self.directory.clone(),
                reason: format!("search under {base:?}: {status}"),
            });
        }
        let next_cookie = status
            .ctrls
            .iter()
            .find_map(|c| match c {
                Control(Some(ControlType::PagedResults), raw) => Some(raw.parse::<PagedResults>().cookie),
                _ => None,
            })
            .unwrap_or_default();
        let entries = raw
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(SearchEntry::construct)
            .collect();
        Ok((entries, next_cookie))
    }

    /// A subtree search with the simple paged results control (RFC 2696), so
    /// directories larger than the server's size limit (AD: 1,000) are read whole.
    /// `on_page` is told the running count after each page.
    pub(crate) async fn paged_search(
        &mut self,
        base: &str,
        filter: &str,
        attrs: &[&str],
        page_size: u32,
        mut on_page: impl FnMut(usize),
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        let mut all = Vec::new();
        let mut cookie = Vec::new();
        loop {
            let (entries, next) = self
                .search_page(base, Scope::Subtree, filter, attrs, Some((page_size, cookie)))
                .await?;
            all.extend(entries);
            on_page(all.len());
            if next.is_empty() {
                return Ok(all);
            }
            cookie = next;
        }
    }

    /// A search with a size limit and no paging, for interactive look-ups.
    pub(crate) async fn limited_search(
        &mut self,
        base: &str,
        filter: &str,
        attrs: &[&str],
        limit: u32,
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        self.ldap
            .with_search_options(ldap3::SearchOptions::new().sizelimit(i32::try_from(limit).unwrap_or(i32::MAX)));
        Ok(self.search_page(base, Scope::Subtree, filter, attrs, None).await?.0)
    }

    /// Reads the rest of a multi-valued attribute that the server returned in
    /// ranges (`member;range=0-1499`), starting at `start`.
    pub(crate) async fn read_range(
        &mut self,
        dn: &str,
        attr: &str,
        mut start: u64,
    ) -> Result<Vec<String>, DirectoryError> {
        let mut values = Vec::new();
        // A bound on round trips guards against a server that never ends the range.
        for _ in 0..10_000 {
            let wanted = format!("{attr};range={start}-*");
            let entries = self
                .search_page(dn, Scope::Base, "(objectClass=*)", &[wanted.as_str()], None)
                .await?
                .0;
            let Some(entry) = entries.first() else { break };
            match super::entry::ranged_values(entry, attr) {
                Some((part, Some(next))) => {
                    values.extend(part);
                    start = next;
                }
                Some((part, None)) => {
                    values.extend(part);
                    break;
                }
                None => break,
            }
        }
        Ok(values)
    }

    pub(crate) async fn unbind(mut self) {
        let _ = self.ldap.unbind().await;
    }
}
