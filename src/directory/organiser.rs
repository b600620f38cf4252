//! Organiser addresses as Exchange gives them: an SMTP address (any alias,
//! any case) or a legacy Exchange DN (`/o=.../cn=Recipients/cn=alice`, routing
//! type `EX`), which Exchange 2007 sends for internal senders.

/// A parsed organiser address, normalised for lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrganiserAddress {
    /// Lower-cased SMTP address.
    Smtp(String),
    /// A legacy Exchange DN, as given (compared case-insensitively).
    LegacyDn(String),
}

/// Parses `alice@x`, `SMTP:alice@x`, `mailto:alice@x`, `Alice <alice@x>`,
/// `EX:/o=...`, `X500:/o=...` or `/o=...`. Returns `None` for anything else,
/// which the caller treats as an unknown organiser.
pub fn parse_organiser(raw: &str) -> Option<OrganiserAddress> {
    let mut s = raw.trim();
    if let (Some(open), true) = (s.rfind('<'), s.ends_with('>')) {
        s = s[open + 1..s.len() - 1].trim();
    }
    if let Some((kind, rest)) = s.split_once(':') {
        let kind = kind.to_ascii_lowercase();
        match kind.as_str() {
            "smtp" | "mailto" => s = rest.trim(),
            "ex" | "x500" => s = rest.trim(),
            _ => {}
        }
    }
    if s.starts_with('/') {
        let lower = s.to_ascii_lowercase();
        return (lower.starts_with("/o=") && lower.len() > 3).then(|| OrganiserAddress::LegacyDn(s.to_owned()));
    }
    let (local, domain) = s.split_once('@')?;
    if local.is_empty() || domain.is_empty() || s.contains(char::is_whitespace) || domain.contains('@') {
        return None;
    }
    Some(OrganiserAddress::Smtp(s.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_seen_in_meeting_requests() {
        use OrganiserAddress::*;
        let cases: &[(&str, Option<OrganiserAddress>)] = &[
            (
                "Alice.Martin@PlaineCommune.test",
                Some(Smtp("alice.martin@plainecommune.test".into())),
            ),
            (
                "SMTP:a.martin@plainecommune.test",
                Some(Smtp("a.martin@plainecommune.test".into())),
            ),
            ("mailto:bob@x.test", Some(Smtp("bob@x.test".into()))),
            ("Alice Martin <alice@x.test>", Some(Smtp("alice@x.test".into()))),
            (
                "EX:/o=PC/ou=EAG/cn=Recipients/cn=alice",
                Some(LegacyDn("/o=PC/ou=EAG/cn=Recipients/cn=alice".into())),
            ),
            (
                "/O=PC/OU=EAG/cn=Recipients/cn=alice",
                Some(LegacyDn("/O=PC/OU=EAG/cn=Recipients/cn=alice".into())),
            ),
            ("", None),
            ("alice", None),
            ("a@b@c", None),
            ("/cn=nothing", None),
        ];
        for (raw, want) in cases {
            assert_eq!(&parse_organiser(raw), want, "{raw:?}");
        }
    }
}
