//! Server versions: what each announces in ServerVersionInfo, and which
//! request elements its schema lacks, so that a request written for a newer
//! Exchange fails as it would on the real one (an ErrorSchemaValidation
//! SOAP fault) instead of silently working in tests.

use crate::ews::ServerVersion;
use crate::ews::soap::ServerVersionInfo;
use crate::ews::xml::Element;

/// The build numbers of real servers of each version.
pub fn server_version_info(v: ServerVersion) -> ServerVersionInfo {
    let (major, minor, build, rev, name) = match v {
        ServerVersion::Exchange2007_SP1 => (8, 3, 348, 2, "Exchange2007_SP1"),
        ServerVersion::Exchange2010_SP2 => (14, 2, 247, 5, "Exchange2010_SP2"),
        ServerVersion::Exchange2013_SP1 => (15, 0, 847, 32, "Exchange2013_SP1"),
        ServerVersion::Exchange2016 => (15, 1, 2507, 6, "V2017_07_11"),
    };
    ServerVersionInfo {
        major_version: major,
        minor_version: minor,
        major_build_number: build,
        minor_build_number: rev,
        version: Some(name.to_owned()),
    }
}

/// Parses the CLI's `--version` value.
pub fn parse_cli_version(s: &str) -> Option<ServerVersion> {
    Some(match s.trim().to_ascii_uppercase().as_str() {
        "2007_SP1" | "2007" | "EXCHANGE2007_SP1" => ServerVersion::Exchange2007_SP1,
        "2010_SP2" | "2010" | "EXCHANGE2010_SP2" => ServerVersion::Exchange2010_SP2,
        "2013" | "2013_SP1" | "EXCHANGE2013_SP1" => ServerVersion::Exchange2013_SP1,
        "2016" | "2019" | "EXCHANGE2016" => ServerVersion::Exchange2016,
        _ => return None,
    })
}

/// Request elements (local names) and the first version whose schema has
/// them. Only elements a client of resa's kind may plausibly send.
const INTRODUCED: &[(&str, ServerVersion)] = &[
    ("StreamingSubscriptionRequest", ServerVersion::Exchange2010_SP2),
    ("GetStreamingEvents", ServerVersion::Exchange2010_SP2),
    ("GetRoomLists", ServerVersion::Exchange2010_SP2),
    ("GetRooms", ServerVersion::Exchange2010_SP2),
    ("SyncScope", ServerVersion::Exchange2010_SP2),
    ("StartTimeZone", ServerVersion::Exchange2010_SP2),
    ("EndTimeZone", ServerVersion::Exchange2010_SP2),
    ("FirstDayOfWeek", ServerVersion::Exchange2010_SP2),
    ("ProposedStart", ServerVersion::Exchange2013_SP1),
    ("ProposedEnd", ServerVersion::Exchange2013_SP1),
    ("ManagementRole", ServerVersion::Exchange2013_SP1),
];

/// The first element of `el` (depth first) that `version`'s schema lacks.
pub fn unknown_element(el: &Element, version: ServerVersion) -> Option<(&str, ServerVersion)> {
    if let Some((name, since)) = INTRODUCED.iter().find(|(n, _)| *n == el.name)
        && version < *since
    {
        return Some((name, *since));
    }
    el.children.iter().find_map(|c| unknown_element(c, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_is_unknown_to_2007() {
        let el = crate::ews::xml::parse(
            br#"<Subscribe><StreamingSubscriptionRequest><FolderIds/></StreamingSubscriptionRequest></Subscribe>"#,
            1024,
        )
        .unwrap_or_default();
        assert!(unknown_element(&el, ServerVersion::Exchange2007_SP1).is_some());
        assert!(unknown_element(&el, ServerVersion::Exchange2010_SP2).is_none());
        assert_eq!(parse_cli_version("2010_SP2"), Some(ServerVersion::Exchange2010_SP2));
        assert_eq!(
            server_version_info(ServerVersion::Exchange2016).server_version(),
            ServerVersion::Exchange2016
        );
    }
}
