//! The settings of one directory (one Active Directory, or one OU of it, per
//! organisation). The config module turns its TOML into [`DirectorySettings`];
//! nothing here reads files except [`Secret::from_file`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::DirectoryError;

/// A password or other secret. It never prints: `Debug` and `Display` show a
/// placeholder, so a settings struct can be logged whole.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Reads a secret from a file (a systemd credential or a mode-600 file).
    /// A single trailing line break is dropped because editors add one.
    pub fn from_file(path: &Path) -> Result<Secret, DirectoryError> {
        let text = std::fs::read_to_string(path).map_err(|e| DirectoryError::Settings {
            directory: String::new(),
            reason: format!("cannot read secret file {}: {e}", path.display()),
        })?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        Ok(Secret(text.to_owned()))
    }

    /// The secret itself, for the one call that needs it (the LDAP bind).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The LDAP attribute names resa reads. The defaults are Active Directory's;
/// they are configurable because some sites keep e-mail data in other
/// attributes (e.g. after a Lotus Notes migration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeNames {
    pub object_guid: String,
    pub account_name: String,
    pub user_principal_name: String,
    pub mail: String,
    pub proxy_addresses: String,
    pub legacy_exchange_dn: String,
    pub display_name: String,
    pub department: String,
    pub manager: String,
    pub user_account_control: String,
    pub usn_changed: String,
    pub group_name: String,
    pub group_description: String,
    pub member: String,
    /// The attribute holding a person's driving licence classes (e.g.
    /// `carLicense`), when the directory keeps them; read for the vehicle
    /// licence check. None by default: AD has no standard one.
    pub licence_classes: Option<String>,
}

impl Default for AttributeNames {
    fn default() -> Self {
        AttributeNames {
            object_guid: "objectGUID".into(),
            account_name: "sAMAccountName".into(),
            user_principal_name: "userPrincipalName".into(),
            mail: "mail".into(),
            proxy_addresses: "proxyAddresses".into(),
            legacy_exchange_dn: "legacyExchangeDN".into(),
            display_name: "displayName".into(),
            department: "department".into(),
            manager: "manager".into(),
            user_account_control: "userAccountControl".into(),
            usn_changed: "uSNChanged".into(),
            group_name: "cn".into(),
            group_description: "description".into(),
            member: "member".into(),
            licence_classes: None,
        }
    }
}

/// One configured directory.
#[derive(Debug, Clone)]
pub struct DirectorySettings {
    /// The name of the `[[directory]]` section; also the key of the
    /// `directories` row, so renaming it starts a new directory.
    pub name: String,
    /// Slug of the organisation whose people this directory holds.
    pub organisation: Option<String>,
    /// `ldaps://host:636` or, with `starttls`, `ldap://host:389`.
    pub url: String,
    pub starttls: bool,
    /// PEM file of the CA(s) that signed the DC's certificate; the system's
    /// roots are used when absent. Certificate checks are never turned off.
    pub ca_file: Option<PathBuf>,
    pub bind_dn: String,
    pub bind_password: Secret,
    pub user_base_dn: String,
    pub group_base_dn: String,
    pub user_filter: String,
    pub group_filter: String,
    /// The NetBIOS domain name (e.g. `PLAINECOMMUNE`), so that a login as
    /// `DOMAIN\user` goes to this directory only.
    pub netbios_domain: Option<String>,
    pub attributes: AttributeNames,
    pub page_size: u32,
    /// The limit for connecting and for each LDAP operation.
    pub timeout: Duration,
    /// How often the periodic full sync runs (it alone notices deletions).
    pub full_sync_interval: Duration,
    /// After how long without a successful sync the status says "stale".
    pub stale_after: Duration,
    /// Lets a full sync delete more than [`MASS_DELETION_FRACTION`] of the
    /// known people. Off by default: a wrong base DN or filter reads nobody,
    /// and must not delete everybody.
    pub allow_mass_deletion: bool,
    /// How the licence attribute (`attributes.licence_classes`) writes the
    /// classes and the end date.
    pub licence_format: crate::domain::vehicles::LicenceFormat,
    /// Whether the directory's licence replaces one a manager entered on the
    /// web site. Off by default: the manager's entry stands.
    pub licence_overrides_manager: bool,
}

/// The share of known people a full sync may delete without
/// `allow_mass_deletion` (beyond [`MASS_DELETION_MIN`] people).
pub const MASS_DELETION_FRACTION: f64 = 0.2;
/// Deleting this many people or fewer never counts as a mass deletion.
pub const MASS_DELETION_MIN: usize = 10;

impl DirectorySettings {
    /// Settings with Active Directory defaults for everything that has one.
    pub fn new(
        name: impl Into<String>,
        url: impl Into<String>,
        bind_dn: impl Into<String>,
        bind_password: Secret,
        user_base_dn: impl Into<String>,
        group_base_dn: impl Into<String>,
    ) -> DirectorySettings {
        DirectorySettings {
            name: name.into(),
            organisation: None,
            url: url.into(),
            starttls: false,
            ca_file: None,
            bind_dn: bind_dn.into(),
            bind_password,
            user_base_dn: user_base_dn.into(),
            group_base_dn: group_base_dn.into(),
            user_filter: DEFAULT_USER_FILTER.into(),
            group_filter: DEFAULT_GROUP_FILTER.into(),
            netbios_domain: None,
            attributes: AttributeNames::default(),
            page_size: 500,
            timeout: Duration::from_secs(15),
            full_sync_interval: Duration::from_secs(24 * 3600),
            stale_after: Duration::from_secs(2 * 3600),
            allow_mass_deletion: false,
            licence_format: crate::domain::vehicles::LicenceFormat::default(),
            licence_overrides_manager: false,
        }
    }

    /// Checks what can be checked without the network, so a bad config is
    /// refused at start-up rather than at the first sync.
    pub fn validate(&self) -> Result<(), DirectoryError> {
        let bad = |reason: String| DirectoryError::Settings {
            directory: self.name.clone(),
            reason,
        };
        let url = url::Url::parse(&self.url).map_err(|e| bad(format!("url {:?}: {e}", self.url)))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad(format!("url {:?} has no host", self.url)));
        }
        match (url.scheme(), self.starttls) {
            ("ldaps", false) | ("ldap", true) => {}
            ("ldap", false) => {
                return Err(bad(
                    "plain ldap:// without starttls would send passwords in clear; use ldaps:// or starttls = true"
                        .into(),
                ));
            }
            ("ldaps", true) => {
                return Err(bad("starttls applies to ldap:// URLs, not ldaps://".into()));
            }
            (other, _) => return Err(bad(format!("unsupported URL scheme {other:?}"))),
        }
        if self.page_size == 0 {
            return Err(bad("page_size must be positive".into()));
        }
        if self.timeout.is_zero() {
            return Err(bad("timeout must be positive".into()));
        }
        for (what, filter) in [("user_filter", &self.user_filter), ("group_filter", &self.group_filter)] {
            if !(filter.starts_with('(') && filter.ends_with(')')) {
                return Err(bad(format!("{what} must be a parenthesised LDAP filter")));
            }
        }
        Ok(())
    }
}

/// People: user objects, excluding computers (which are users too in AD).
/// Disabled accounts are included on purpose, so they can be flagged.
pub const DEFAULT_USER_FILTER: &str = "(&(objectCategory=person)(objectClass=user))";
pub const DEFAULT_GROUP_FILTER: &str = "(objectClass=group)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = DirectorySettings::new("pc", "ldaps://dc", "cn=x", Secret::new("hunter2"), "ou=a", "ou=b");
        let shown = format!("{s:?} {}", s.bind_password);
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn secret_file_drops_one_line_break() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pw");
        std::fs::write(&path, "p@ss word\n").expect("write");
        assert_eq!(Secret::from_file(&path).expect("read").expose(), "p@ss word");
    }

    #[test]
    fn clear_text_ldap_is_refused() {
        let mut s = DirectorySettings::new("pc", "ldap://dc", "cn=x", Secret::new("p"), "ou=a", "ou=b");
        assert!(s.validate().is_err());
        s.starttls = true;
        assert!(s.validate().is_ok());
        s.url = "ldaps://dc:636".into();
        assert!(s.validate().is_err());
        s.starttls = false;
        assert!(s.validate().is_ok());
    }
}
