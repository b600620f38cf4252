//! Web login against the directory: find the account with the service bind,
//! then bind as the user with their password.
//!
//! The user name may be `account`, `DOMAIN\account` or `user@upn` (also
//! matched against `mail`, which people type just as often). Its value is
//! escaped before it goes into a filter, so `*)(uid=*` finds nothing.

use uuid::Uuid;

use super::DirectoryError;
use super::entry::person_from_entry;
use super::error::bind_failure;
use super::filter::escape_value;
use super::ldap::Session;
use super::settings::{DirectorySettings, Secret};

/// Longest user name accepted; AD's own limits are far below.
const MAX_USER_NAME: usize = 256;

/// Who logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginUser {
    pub directory: String,
    pub object_guid: Uuid,
    pub dn: String,
    pub sam_account_name: String,
    pub display_name: String,
}

/// A user name as typed, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginName {
    /// `account` or `DOMAIN\account`.
    Account { domain: Option<String>, account: String },
    /// `name@suffix`: a UPN or an e-mail address.
    Principal(String),
}

/// Parses a typed user name; `None` for an empty, overlong or malformed one
/// (which is then reported as wrong credentials).
pub fn parse_login_name(raw: &str) -> Option<LoginName> {
    let s = raw.trim();
    if s.is_empty() || s.len() > MAX_USER_NAME || s.chars().any(char::is_control) {
        return None;
    }
    if let Some((domain, account)) = s.split_once('\\') {
        if domain.is_empty() || account.is_empty() || account.contains(['\\', '@']) {
            return None;
        }
        return Some(LoginName::Account {
            domain: Some(domain.to_owned()),
            account: account.to_owned(),
        });
    }
    if s.contains('@') {
        return Some(LoginName::Principal(s.to_owned()));
    }
    Some(LoginName::Account {
        domain: None,
        account: s.to_owned(),
    })
}

/// The filter that finds the account in one directory.
pub(crate) fn account_filter(settings: &DirectorySettings, name: &LoginName) -> String {
    let a = &settings.attributes;
    match name {
        LoginName::Account { account, .. } => {
            format!(
                "(&{}({}={}))",
                settings.user_filter,
                a.account_name,
                escape_value(account)
            )
        }
        LoginName::Principal(p) => {
            let v = escape_value(p);
            format!(
                "(&{}(|({}={v})({}={v})))",
                settings.user_filter, a.user_principal_name, a.mail
            )
        }
    }
}

/// Checks a user name and password against the configured directories.
///
/// A `DOMAIN\` prefix picks the directory with that NetBIOS name; otherwise
/// each directory is asked in turn and the first that knows the account
/// decides. If the account was found nowhere but a directory could not be
/// asked, the answer is "unreachable", not "wrong password".
pub async fn login(
    directories: &[DirectorySettings],
    user_name: &str,
    password: &Secret,
) -> Result<LoginUser, DirectoryError> {
    let name = parse_login_name(user_name).ok_or(DirectoryError::InvalidCredentials)?;
    // An empty password makes a simple bind "unauthenticated" and AD
    // answers success: it must never reach the server.
    if password.is_empty() {
        return Err(DirectoryError::InvalidCredentials);
    }
    let candidates: Vec<&DirectorySettings> = match &name {
        LoginName::Account { domain: Some(d), .. } => directories
            .iter()
            .filter(|s| s.netbios_domain.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(d)))
            .collect(),
        _ => directories.iter().collect(),
    };
    let mut unreachable = None;
    for settings in candidates {
        match find_account(settings, &name).await {
            Ok(Some(user)) => return bind_as(settings, user, password).await,
            Ok(None) => {}
            Err(e) if e.is_unavailable() => {
                tracing::warn!(directory.name = %settings.name, error = %e, "login: directory unavailable");
                unreachable = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(unreachable.unwrap_or(DirectoryError::InvalidCredentials))
}

async fn find_account(settings: &DirectorySettings, name: &LoginName) -> Result<Option<LoginUser>, DirectoryError> {
    let mut session = Session::service(settings).await?;
    let a = &settings.attributes;
    let attrs = [
        a.object_guid.as_str(),
        &a.account_name,
        &a.display_name,
        "cn",
        &a.user_account_control,
    ];
    let entries = session
        .limited_search(&settings.user_base_dn, &account_filter(settings, name), &attrs, 2)
        .await?;
    session.unbind().await;
    match entries.as_slice() {
        [] => Ok(None),
        [e] => match person_from_entry(e, a) {
            Ok(p) => Ok(Some(LoginUser {
                directory: settings.name.clone(),
                object_guid: p.object_guid,
                dn: p.dn,
                sam_account_name: p.sam_account_name,
                display_name: p.display_name,
            })),
            Err(_) => Ok(None),
        },
        _ => {
            // Two accounts answer to one name (e.g. a UPN equal to another
            // account's mail): refuse rather than guess.
            tracing::warn!(directory.name = %settings.name, "login: user name matches several accounts");
            Err(DirectoryError::InvalidCredentials)
        }
    }
}

async fn bind_as(
    settings: &DirectorySettings,
    user: LoginUser,
    password: &Secret,
) -> Result<LoginUser, DirectoryError> {
    let mut session = Session::connect(settings).await?;
    let result = session.bind(&user.dn, password.expose()).await?;
    session.unbind().await;
    if result.rc == 0 {
        tracing::info!(directory.name = %settings.name, user.account = %user.sam_account_name, "login succeeded");
        return Ok(user);
    }
    let err = bind_failure(result.rc, &result.text).unwrap_or_else(|| DirectoryError::Ldap {
        directory: settings.name.clone(),
        reason: result.to_string(),
    });
    tracing::info!(directory.name = %settings.name, user.account = %user.sam_account_name, error = %err, "login refused");
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_name_forms() {
        let acc = |d: Option<&str>, a: &str| {
            Some(LoginName::Account {
                domain: d.map(str::to_owned),
                account: a.to_owned(),
            })
        };
        assert_eq!(parse_login_name(" alice "), acc(None, "alice"));
        assert_eq!(parse_login_name("PLAINE\\alice"), acc(Some("PLAINE"), "alice"));
        assert_eq!(
            parse_login_name("alice@pc.test"),
            Some(LoginName::Principal("alice@pc.test".into()))
        );
        for bad in ["", "   ", "\\alice", "PLAINE\\", "a\\b\\c", "al\nice", &"x".repeat(300)] {
            assert_eq!(parse_login_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn injection_stays_a_value() {
        let s = DirectorySettings::new("pc", "ldaps://dc", "cn=x", Secret::new("p"), "ou=a", "ou=b");
        let name = parse_login_name("*)(uid=*").expect("parses as an account name");
        let f = account_filter(&s, &name);
        assert!(f.ends_with("(sAMAccountName=\\2a\\29\\28uid=\\2a))"), "{f}");
        assert!(ldap3::parse_filter(&f).is_ok());
    }
}
