//! Live group search for the admin page that maps groups to rights.

use uuid::Uuid;

use super::DirectoryError;
use super::entry::group_from_entry;
use super::filter::escape_value;
use super::ldap::Session;
use super::settings::DirectorySettings;

/// How many groups one search returns at most; the admin refines the text
/// rather than scrolls.
pub const GROUP_SEARCH_LIMIT: u32 = 50;

/// A group found in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupHit {
    pub object_guid: Uuid,
    pub dn: String,
    pub name: String,
    pub sam_account_name: String,
    pub description: Option<String>,
}

/// The filter for groups whose name contains `text` (all groups when empty).
pub(crate) fn group_search_filter(settings: &DirectorySettings, text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return settings.group_filter.clone();
    }
    let v = escape_value(text);
    let a = &settings.attributes;
    format!(
        "(&{}(|({}=*{v}*)({}=*{v}*)(displayName=*{v}*)))",
        settings.group_filter, a.group_name, a.account_name
    )
}

/// Groups of one directory whose name contains `text`, read live (not from
/// the store), sorted by name.
pub async fn search_groups(settings: &DirectorySettings, text: &str) -> Result<Vec<GroupHit>, DirectoryError> {
    let mut session = Session::service(settings).await?;
    let a = &settings.attributes;
    let attrs = [
        a.object_guid.as_str(),
        &a.account_name,
        &a.group_name,
        &a.group_description,
    ];
    let entries = session
        .limited_search(
            &settings.group_base_dn,
            &group_search_filter(settings, text),
            &attrs,
            GROUP_SEARCH_LIMIT,
        )
        .await?;
    session.unbind().await;
    let mut hits: Vec<GroupHit> = entries
        .iter()
        .filter_map(|e| group_from_entry(e, a).ok())
        .map(|g| GroupHit {
            object_guid: g.object_guid,
            dn: g.dn,
            name: g.name,
            sam_account_name: g.sam_account_name,
            description: g.description,
        })
        .collect();
    hits.sort_by_key(|h| h.name.to_lowercase());
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Secret;

    #[test]
    fn search_text_is_escaped() {
        let s = DirectorySettings::new("pc", "ldaps://dc", "cn=x", Secret::new("p"), "ou=a", "ou=b");
        let f = group_search_filter(&s, "DSI (Paris)*");
        assert_eq!(
            f,
            "(&(objectClass=group)(|(cn=*DSI \\28Paris\\29\\2a*)(sAMAccountName=*DSI \\28Paris\\29\\2a*)(displayName=*DSI \\28Paris\\29\\2a*)))"
        );
        assert!(ldap3::parse_filter(&f).is_ok());
        assert_eq!(group_search_filter(&s, "  "), "(objectClass=group)");
    }
}
