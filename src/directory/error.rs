//! The one error type of the directory layer.
//!
//! Policy: login failures are variants of their own, so the web layer can show
//! the user a precise French (or English) message from [`DirectoryError::message_fr`]
//! without ever showing server text; the technical detail (`reason`) is for logs.
//! An unknown user and a wrong password are the same variant on purpose: telling
//! them apart would let anyone probe which accounts exist.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory {directory}: invalid settings: {reason}")]
    Settings { directory: String, reason: String },
    #[error("directory {directory}: unreachable: {reason}")]
    Unreachable { directory: String, reason: String },
    #[error("directory {directory}: TLS: {reason}")]
    Tls { directory: String, reason: String },
    #[error("directory {directory}: the service account bind was refused: {reason}")]
    ServiceBind { directory: String, reason: String },
    #[error("directory {directory}: LDAP operation failed: {reason}")]
    Ldap { directory: String, reason: String },
    #[error(
        "directory {directory}: a full sync would delete {would_delete} of {known} people; \
         check the base DN and filter, or set allow_mass_deletion"
    )]
    MassDeletion {
        directory: String,
        would_delete: usize,
        known: usize,
    },
    #[error("no directory named {0}")]
    UnknownDirectory(String),
    #[error("invalid user name or password")]
    InvalidCredentials,
    #[error("account locked out")]
    AccountLocked,
    #[error("account disabled")]
    AccountDisabled,
    #[error("password expired")]
    PasswordExpired,
    #[error("password must be changed")]
    MustChangePassword,
    #[error("account expired")]
    AccountExpired,
    #[error("logon not allowed at this time or from this workstation")]
    LogonRestricted,
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl DirectoryError {
    /// The message shown to a French user. It never contains server text.
    pub fn message_fr(&self) -> &'static str {
        match self {
            DirectoryError::InvalidCredentials => "Identifiant ou mot de passe incorrect.",
            DirectoryError::AccountLocked => {
                "Votre compte est verrouillé après trop d'essais. Réessayez plus tard ou contactez le support informatique."
            }
            DirectoryError::AccountDisabled => "Votre compte est désactivé. Contactez le support informatique.",
            DirectoryError::PasswordExpired | DirectoryError::MustChangePassword => {
                "Votre mot de passe a expiré. Changez-le depuis votre poste Windows, puis réessayez."
            }
            DirectoryError::AccountExpired => "Votre compte a expiré. Contactez le support informatique.",
            DirectoryError::LogonRestricted => {
                "Votre compte n'est pas autorisé à se connecter maintenant ou depuis ce poste."
            }
            DirectoryError::Unreachable { .. } | DirectoryError::Tls { .. } | DirectoryError::ServiceBind { .. } => {
                "L'annuaire est injoignable pour le moment. Réessayez dans quelques minutes."
            }
            _ => "Une erreur technique est survenue. Réessayez ou contactez le support informatique.",
        }
    }

    /// The same message in English.
    pub fn message_en(&self) -> &'static str {
        match self {
            DirectoryError::InvalidCredentials => "Wrong user name or password.",
            DirectoryError::AccountLocked => {
                "Your account is locked after too many attempts. Try again later or contact IT support."
            }
            DirectoryError::AccountDisabled => "Your account is disabled. Contact IT support.",
            DirectoryError::PasswordExpired | DirectoryError::MustChangePassword => {
                "Your password has expired. Change it from your Windows workstation, then try again."
            }
            DirectoryError::AccountExpired => "Your account has expired. Contact IT support.",
            DirectoryError::LogonRestricted => "Your account may not log on now or from this workstation.",
            DirectoryError::Unreachable { .. } | DirectoryError::Tls { .. } | DirectoryError::ServiceBind { .. } => {
                "The directory cannot be reached right now. Try again in a few minutes."
            }
            _ => "A technical error occurred. Try again or contact IT support.",
        }
    }

    /// True when the directory could not be used at all (as opposed to a
    /// refusal of this user): the caller may fall back to synced data.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            DirectoryError::Unreachable { .. } | DirectoryError::Tls { .. } | DirectoryError::ServiceBind { .. }
        )
    }
}

/// What a failed user bind means, from the LDAP result code and the
/// `data XXX` sub-code that AD (and Samba) put in the diagnostic message:
/// `80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 52e, v3839`.
pub(crate) fn bind_failure(rc: u32, text: &str) -> Option<DirectoryError> {
    if rc != 49 {
        return None;
    }
    let code = ad_data_code(text);
    Some(match code.as_deref() {
        Some("775") => DirectoryError::AccountLocked,
        Some("533") => DirectoryError::AccountDisabled,
        Some("532") => DirectoryError::PasswordExpired,
        Some("773") => DirectoryError::MustChangePassword,
        Some("701") => DirectoryError::AccountExpired,
        Some("530") | Some("531") => DirectoryError::LogonRestricted,
        // 52e (wrong password), 525 (no such user) and anything unknown.
        _ => DirectoryError::InvalidCredentials,
    })
}

fn ad_data_code(text: &str) -> Option<String> {
    let start = text.find("data ")? + "data ".len();
    let code: String = text[start..].chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    (!code.is_empty()).then(|| code.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ad(code: &str) -> String {
        format!("80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data {code}, v1db1\0")
    }

    #[test]
    fn bind_codes_map_to_typed_errors() {
        let cases = [
            ("52e", "InvalidCredentials"),
            ("525", "InvalidCredentials"),
            ("775", "AccountLocked"),
            ("533", "AccountDisabled"),
            ("532", "PasswordExpired"),
            ("773", "MustChangePassword"),
            ("701", "AccountExpired"),
            ("530", "LogonRestricted"),
        ];
        for (code, want) in cases {
            let got = bind_failure(49, &ad(code)).expect("rc 49 is a failure");
            assert!(format!("{got:?}").starts_with(want), "{code}: {got:?}");
        }
        assert!(matches!(
            bind_failure(49, "no data here"),
            Some(DirectoryError::InvalidCredentials)
        ));
        assert!(bind_failure(0, "").is_none());
        assert!(bind_failure(52, "").is_none());
    }

    #[test]
    fn every_failure_has_both_languages() {
        let all = [
            DirectoryError::InvalidCredentials,
            DirectoryError::AccountLocked,
            DirectoryError::AccountDisabled,
            DirectoryError::PasswordExpired,
            DirectoryError::AccountExpired,
            DirectoryError::Unreachable {
                directory: "pc".into(),
                reason: "refused".into(),
            },
        ];
        for e in all {
            assert_ne!(e.message_fr(), e.message_en());
            assert!(!e.message_fr().contains("refused"));
        }
    }
}
