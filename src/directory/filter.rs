//! LDAP filter values, escaped per RFC 4515 section 3, so that text typed by
//! a user (a login name, a group search) can never change a filter's shape.

/// Escapes a value for use inside a filter assertion: `*`, `(`, `)`, `\` and
/// NUL become `\2a`, `\28`, `\29`, `\5c` and `\00`. Other characters, UTF-8
/// included, are allowed as they are by the RFC.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// `(&<base>(<attr> >= <usn + 1>))`: the entries changed since `usn`.
pub(crate) fn changed_since(base: &str, usn_attr: &str, usn: i64) -> String {
    format!("(&{base}({usn_attr}>={}))", usn.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_rfc4515_specials() {
        let cases = [
            ("alice", "alice"),
            ("*)(uid=*", "\\2a\\29\\28uid=\\2a"),
            ("a\\b", "a\\5cb"),
            ("nul\0", "nul\\00"),
            ("Hélène (DSI)", "Hélène \\28DSI\\29"),
        ];
        for (input, want) in cases {
            assert_eq!(escape_value(input), want, "{input:?}");
        }
    }

    #[test]
    fn escaped_values_parse_as_one_assertion() {
        for hostile in ["*)(uid=*", "*", ")(|(objectClass=*", "\\", "x)(&"] {
            let filter = format!("(sAMAccountName={})", escape_value(hostile));
            assert!(ldap3::parse_filter(&filter).is_ok(), "{filter}");
            assert!(!filter[1..filter.len() - 1].contains(['(', ')', '*']), "{filter}");
        }
    }

    #[test]
    fn changed_since_is_exclusive() {
        assert_eq!(
            changed_since("(objectClass=user)", "uSNChanged", 41),
            "(&(objectClass=user)(uSNChanged>=42))"
        );
    }
}
