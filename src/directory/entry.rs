//! From LDAP entries to the records resa keeps: the boundary where wire data
//! (strings, binary GUIDs, flag integers) becomes typed data.

use ldap3::SearchEntry;
use uuid::Uuid;

use super::guid::guid_from_ad_bytes;
use super::settings::AttributeNames;

/// userAccountControl's ACCOUNTDISABLE bit.
const UAC_ACCOUNT_DISABLE: i64 = 0x2;

/// One SMTP address of a person, lower-cased (addresses compare
/// case-insensitively in practice, and the schema stores them lower-case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpAddress {
    pub address: String,
    pub primary: bool,
}

/// A person as read from the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRecord {
    pub object_guid: Uuid,
    pub dn: String,
    pub sam_account_name: String,
    pub user_principal_name: Option<String>,
    pub display_name: String,
    pub department: Option<String>,
    pub manager_dn: Option<String>,
    pub legacy_exchange_dn: Option<String>,
    /// Older legacy DNs kept as `X500:` proxy addresses after a mailbox move
    /// or an Exchange migration; Outlook may still send them as organiser.
    pub x500_addresses: Vec<String>,
    pub addresses: Vec<SmtpAddress>,
    pub disabled: bool,
    pub usn_changed: Option<i64>,
}

/// A group as read from the directory, with its direct members' DNs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub object_guid: Uuid,
    pub dn: String,
    pub sam_account_name: String,
    pub name: String,
    pub description: Option<String>,
    pub member_dns: Vec<String>,
    pub usn_changed: Option<i64>,
}

/// Why an entry could not be used; such entries are skipped and logged, so
/// one odd object does not stop a whole sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    pub dn: String,
    pub reason: &'static str,
}

fn values<'a>(e: &'a SearchEntry, name: &str) -> &'a [String] {
    // Servers answer with the schema's spelling, which may differ in case
    // from the configured one.
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
        .unwrap_or_default()
}

fn first(e: &SearchEntry, name: &str) -> Option<String> {
    values(e, name)
        .iter()
        .find(|v| !v.trim().is_empty())
        .map(|v| v.trim().to_owned())
}

/// The objectGUID bytes. ldap3 puts a value in `attrs` when it happens to be
/// valid UTF-8 (a GUID made of ASCII bytes), so both maps are checked.
pub(crate) fn object_guid_of(e: &SearchEntry, name: &str) -> Option<Uuid> {
    if let Some((_, v)) = e.bin_attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
        return v.first().and_then(|b| guid_from_ad_bytes(b));
    }
    values(e, name).first().and_then(|s| guid_from_ad_bytes(s.as_bytes()))
}

fn int(e: &SearchEntry, name: &str) -> Option<i64> {
    first(e, name).and_then(|v| v.parse().ok())
}

/// Collects SMTP addresses from proxyAddresses (`SMTP:` marks the primary,
/// `smtp:` an alias) and from `mail`, which is the primary when there are no
/// proxy addresses (accounts without an Exchange mailbox).
pub(crate) fn smtp_addresses(proxy: &[String], mail: Option<&str>) -> Vec<SmtpAddress> {
    let mut out: Vec<SmtpAddress> = Vec::new();
    for p in proxy {
        if let Some(rest) = p.strip_prefix("SMTP:") {
            push_address(&mut out, rest, true);
        } else if let Some(rest) = p.strip_prefix("smtp:") {
            push_address(&mut out, rest, false);
        }
    }
    if let Some(mail) = mail {
        let has_primary = out.iter().any(|a| a.primary);
        push_address(&mut out, mail, !has_primary);
    }
    // Only one primary: a directory with two `SMTP:` values is misconfigured,
    // and the first one is what Exchange uses.
    let mut seen_primary = false;
    for a in &mut out {
        if a.primary && seen_primary {
            a.primary = false;
        }
        seen_primary |= a.primary;
    }
    out
}

fn push_address(out: &mut Vec<SmtpAddress>, address: &str, primary: bool) {
    let address = address.trim().to_lowercase();
    if !is_plausible_address(&address) {
        return;
    }
    match out.iter_mut().find(|a| a.address == address) {
        Some(existing) => existing.primary |= primary,
        None => out.push(SmtpAddress { address, primary }),
    }
}

fn is_plausible_address(a: &str) -> bool {
    match a.split_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty() && !a.contains(char::is_whitespace),
        None => false,
    }
}

fn x500_addresses(proxy: &[String]) -> Vec<String> {
    proxy
        .iter()
        .filter_map(|p| {
            let (kind, rest) = p.split_once(':')?;
            kind.eq_ignore_ascii_case("x500").then(|| rest.trim().to_owned())
        })
        .filter(|dn| dn.starts_with('/'))
        .collect()
}

pub fn person_from_entry(e: &SearchEntry, names: &AttributeNames) -> Result<PersonRecord, SkippedEntry> {
    let skip = |reason| SkippedEntry {
        dn: e.dn.clone(),
        reason,
    };
    let object_guid = object_guid_of(e, &names.object_guid).ok_or_else(|| skip("no valid objectGUID"))?;
    let sam_account_name = first(e, &names.account_name).ok_or_else(|| skip("no account name"))?;
    let proxy = values(e, &names.proxy_addresses);
    let uac = int(e, &names.user_account_control).unwrap_or(0);
    Ok(PersonRecord {
        object_guid,
        dn: e.dn.clone(),
        user_principal_name: first(e, &names.user_principal_name),
        display_name: first(e, &names.display_name)
            .or_else(|| first(e, "cn"))
            .unwrap_or_else(|| sam_account_name.clone()),
        sam_account_name,
        department: first(e, &names.department),
        manager_dn: first(e, &names.manager),
        legacy_exchange_dn: first(e, &names.legacy_exchange_dn).filter(|dn| dn.starts_with('/')),
        x500_addresses: x500_addresses(proxy),
        addresses: smtp_addresses(proxy, first(e, &names.mail).as_deref()),
        disabled: uac & UAC_ACCOUNT_DISABLE != 0,
        usn_changed: int(e, &names.usn_changed),
    })
}

pub fn group_from_entry(e: &SearchEntry, names: &AttributeNames) -> Result<GroupRecord, SkippedEntry> {
    let skip = |reason| SkippedEntry {
        dn: e.dn.clone(),
        reason,
    };
    let object_guid = object_guid_of(e, &names.object_guid).ok_or_else(|| skip("no valid objectGUID"))?;
    let name = first(e, &names.group_name).ok_or_else(|| skip("no group name"))?;
    Ok(GroupRecord {
        object_guid,
        dn: e.dn.clone(),
        sam_account_name: first(e, &names.account_name).unwrap_or_else(|| name.clone()),
        name,
        description: first(e, &names.group_description),
        member_dns: values(e, &names.member).to_vec(),
        usn_changed: int(e, &names.usn_changed),
    })
}

/// The non-blank values of the licence attribute (several when the
/// directory keeps one class per value).
pub fn licence_values(e: &SearchEntry, attr: &str) -> Vec<String> {
    values(e, attr)
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// For a group with more members than the server returns at once (AD's
/// MaxValRange, 1,500 by default), the `member;range=0-1499` values; returns
/// the values and the next range start, or `None` when this was the last part
/// (`member;range=1500-*`).
pub(crate) fn ranged_values(e: &SearchEntry, attr: &str) -> Option<(Vec<String>, Option<u64>)> {
    let prefix = format!("{attr};range=");
    let (key, vals) = e
        .attrs
        .iter()
        .find(|(k, _)| k.len() > prefix.len() && k[..prefix.len()].eq_ignore_ascii_case(&prefix))?;
    let (_, end) = key[prefix.len()..].split_once('-')?;
    let next = if end == "*" {
        None
    } else {
        Some(end.parse::<u64>().ok()?.saturating_add(1))
    };
    Some((vals.clone(), next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn entry(dn: &str, attrs: &[(&str, &[&str])], guid: &[u8]) -> SearchEntry {
        SearchEntry {
            dn: dn.into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            bin_attrs: HashMap::from([("objectGUID".to_string(), vec![guid.to_vec()])]),
        }
    }

    const GUID: [u8; 16] = [
        0x75, 0x9e, 0x4b, 0xa1, 0x86, 0xb4, 0xb5, 0x43, 0xab, 0x06, 0xae, 0x3c, 0x83, 0x88, 0x50, 0x8f,
    ];

    #[test]
    fn person_with_exchange_attributes() {
        let e = entry(
            "CN=Alice Martin,OU=Agents,DC=x",
            &[
                ("sAMAccountName", &["alice.martin"]),
                ("userPrincipalName", &["alice.martin@x.test"]),
                ("displayName", &["Alice Martin"]),
                ("mail", &["Alice.Martin@plainecommune.test"]),
                (
                    "proxyAddresses",
                    &[
                        "smtp:a.martin@PlaineCommune.test",
                        "SMTP:Alice.Martin@plainecommune.test",
                        "X500:/o=Old/ou=First/cn=Recipients/cn=amartin",
                        "SIP:alice@x.test",
                    ],
                ),
                ("legacyExchangeDN", &["/o=PC/ou=EAG/cn=Recipients/cn=alice"]),
                ("userAccountControl", &["514"]),
                ("uSNChanged", &["4049"]),
                ("manager", &["CN=Denis,OU=Agents,DC=x"]),
            ],
            &GUID,
        );
        let p = person_from_entry(&e, &AttributeNames::default()).expect("valid");
        assert_eq!(p.object_guid.to_string(), "a14b9e75-b486-43b5-ab06-ae3c8388508f");
        assert_eq!(
            p.addresses,
            vec![
                SmtpAddress {
                    address: "a.martin@plainecommune.test".into(),
                    primary: false
                },
                SmtpAddress {
                    address: "alice.martin@plainecommune.test".into(),
                    primary: true
                },
            ]
        );
        assert_eq!(
            p.x500_addresses,
            vec!["/o=Old/ou=First/cn=Recipients/cn=amartin".to_string()]
        );
        assert!(p.disabled);
        assert_eq!(p.usn_changed, Some(4049));
        assert_eq!(p.manager_dn.as_deref(), Some("CN=Denis,OU=Agents,DC=x"));
    }

    #[test]
    fn mail_is_primary_without_proxy_addresses() {
        let got = smtp_addresses(&[], Some("Bob@x.test"));
        assert_eq!(
            got,
            vec![SmtpAddress {
                address: "bob@x.test".into(),
                primary: true
            }]
        );
        let got = smtp_addresses(
            &["SMTP:a@x".into(), "SMTP:b@x".into(), "smtp:not an address".into()],
            None,
        );
        assert_eq!(got.iter().filter(|a| a.primary).count(), 1);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn guid_that_is_valid_utf8_is_still_read() {
        let mut e = entry("CN=x", &[("sAMAccountName", &["x"])], &GUID);
        e.bin_attrs.clear();
        e.attrs.insert("objectGUID".into(), vec!["ABCDEFGHIJKLMNOP".into()]);
        let p = person_from_entry(&e, &AttributeNames::default()).expect("valid");
        assert_eq!(p.object_guid, guid_from_ad_bytes(b"ABCDEFGHIJKLMNOP").expect("16"));
        assert!(!p.disabled);
    }

    #[test]
    fn entry_without_guid_is_skipped() {
        let mut e = entry("CN=x", &[("sAMAccountName", &["x"])], &GUID);
        e.bin_attrs.clear();
        assert_eq!(
            person_from_entry(&e, &AttributeNames::default()).unwrap_err().reason,
            "no valid objectGUID"
        );
    }

    #[test]
    fn member_ranges() {
        let e = entry("CN=g", &[("member;range=0-1499", &["CN=a", "CN=b"])], &GUID);
        assert_eq!(
            ranged_values(&e, "member"),
            Some((vec!["CN=a".into(), "CN=b".into()], Some(1500)))
        );
        let e = entry("CN=g", &[("member;range=1500-*", &["CN=c"])], &GUID);
        assert_eq!(ranged_values(&e, "member"), Some((vec!["CN=c".into()], None)));
        let e = entry("CN=g", &[("member", &["CN=c"])], &GUID);
        assert_eq!(ranged_values(&e, "member"), None);
    }
}
