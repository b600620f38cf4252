//! Wire types shared by several operations: ids, folders, mailboxes,
//! attendees, bodies, extended properties, recurrence and time zones.
//!
//! These mirror the EWS schema (`types.xsd`), not resa's domain: the
//! conversion to domain types happens in the exchange adapter.

use std::str::FromStr;

use base64::Engine as _;
use chrono::{NaiveDate, TimeDelta};

use super::error::EwsError;
use super::soap::ServerVersion;
use super::xml::{Element, Wire, XmlWriter, parse_date};

/// Declares a string-valued EWS enum with `as_str`, `FromStr` and `Display`.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::ews::error::EwsError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim() {
                    $($text => Ok($name::$variant),)*
                    other => Err($crate::ews::error::EwsError::malformed(
                        format!("unknown {} {other:?}", stringify!($name)),
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use wire_enum;

/// Reads an optional enum child; a value this build does not know is
/// treated as absent, because a newer server must not break older resa.
pub fn opt_enum<T: FromStr>(el: &Element, name: &str) -> Option<T> {
    let text = el.child_text(name)?;
    match text.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            tracing::debug!(element = name, value = text, "ews.unknown_enum_value");
            None
        }
    }
}

/// `t:ItemId` (also used under other names: ReferenceItemId, AssociatedCalendarItemId).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ItemId {
    pub id: String,
    pub change_key: Option<String>,
}

impl ItemId {
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            change_key: None,
        }
    }

    pub fn write_as(&self, w: &mut XmlWriter, name: &str) -> Result<(), EwsError> {
        let mut attrs = vec![("Id", self.id.as_str())];
        if let Some(ck) = &self.change_key {
            attrs.push(("ChangeKey", ck));
        }
        w.empty(name, &attrs)
    }

    pub fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            id: el.req_attr("Id")?.to_owned(),
            change_key: el.attr("ChangeKey").map(str::to_owned),
        })
    }
}

wire_enum!(
    /// `t:DistinguishedFolderId/@Id` values resa uses.
    DistinguishedFolder {
        Inbox = "inbox",
        Calendar = "calendar",
        SentItems = "sentitems",
        DeletedItems = "deleteditems",
        Drafts = "drafts",
        Outbox = "outbox",
        MsgFolderRoot = "msgfolderroot",
        Root = "root",
    }
);

/// A folder reference: a distinguished folder (optionally in another
/// mailbox) or a folder id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderRef {
    Distinguished {
        id: DistinguishedFolder,
        mailbox: Option<String>,
    },
    Id(ItemId),
}

impl FolderRef {
    pub fn distinguished(id: DistinguishedFolder) -> Self {
        FolderRef::Distinguished { id, mailbox: None }
    }

    /// A distinguished folder of another mailbox (delegate access, no
    /// impersonation).
    pub fn distinguished_in(id: DistinguishedFolder, mailbox: &str) -> Self {
        FolderRef::Distinguished {
            id,
            mailbox: Some(mailbox.to_owned()),
        }
    }
}

impl Wire for FolderRef {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        match self {
            FolderRef::Distinguished { id, mailbox: None } => {
                w.empty("t:DistinguishedFolderId", &[("Id", id.as_str())])
            }
            FolderRef::Distinguished { id, mailbox: Some(m) } => {
                w.start("t:DistinguishedFolderId", &[("Id", id.as_str())])?;
                w.start("t:Mailbox", &[])?;
                w.text_elem("t:EmailAddress", m)?;
                w.end("t:Mailbox")?;
                w.end("t:DistinguishedFolderId")
            }
            FolderRef::Id(id) => id.write_as(w, "t:FolderId"),
        }
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        match el.name.as_str() {
            "DistinguishedFolderId" => Ok(FolderRef::Distinguished {
                id: el.req_attr("Id")?.parse()?,
                mailbox: el
                    .child("Mailbox")
                    .and_then(|m| m.child_text("EmailAddress"))
                    .map(str::to_owned),
            }),
            "FolderId" => Ok(FolderRef::Id(ItemId::read(el)?)),
            other => Err(EwsError::malformed(format!("<{other}> is not a folder id"))),
        }
    }
}

/// `t:RoutingType`: SMTP, or EX for an Exchange legacy DN that must be
/// resolved (ResolveNames) before it means a person.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoutingType {
    Smtp,
    Ex,
    Other(String),
}

impl RoutingType {
    pub fn as_str(&self) -> &str {
        match self {
            RoutingType::Smtp => "SMTP",
            RoutingType::Ex => "EX",
            RoutingType::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> Self {
        match s.trim() {
            "SMTP" | "smtp" => RoutingType::Smtp,
            "EX" | "ex" => RoutingType::Ex,
            other => RoutingType::Other(other.to_owned()),
        }
    }
}

wire_enum!(
    /// `t:MailboxType`.
    MailboxType {
        Mailbox = "Mailbox",
        PublicDl = "PublicDL",
        PrivateDl = "PrivateDL",
        Contact = "Contact",
        PublicFolder = "PublicFolder",
        Unknown = "Unknown",
        OneOff = "OneOff",
        GroupMailbox = "GroupMailbox",
    }
);

/// `t:Mailbox` / `t:EmailAddressType`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mailbox {
    pub name: Option<String>,
    /// An SMTP address, or a legacy DN when `routing_type` is EX.
    pub email_address: Option<String>,
    pub routing_type: Option<RoutingType>,
    pub mailbox_type: Option<MailboxType>,
}

impl Mailbox {
    pub fn smtp(address: impl Into<String>) -> Self {
        Self {
            email_address: Some(address.into()),
            routing_type: Some(RoutingType::Smtp),
            ..Self::default()
        }
    }

    /// The SMTP address, when this mailbox is addressed by SMTP (or names
    /// no routing type but looks like an address).
    pub fn smtp_address(&self) -> Option<&str> {
        let a = self.email_address.as_deref()?;
        match &self.routing_type {
            Some(RoutingType::Smtp) => Some(a),
            None if a.contains('@') && !a.starts_with('/') => Some(a),
            _ => None,
        }
    }

    /// An Exchange legacy DN that ResolveNames must turn into SMTP first.
    pub fn legacy_dn(&self) -> Option<&str> {
        match &self.routing_type {
            Some(RoutingType::Ex) => self.email_address.as_deref(),
            _ => None,
        }
    }

    /// Writes the inner fields (the caller writes the wrapper element).
    pub fn write_fields(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        w.opt_text("t:Name", self.name.as_ref())?;
        w.opt_text("t:EmailAddress", self.email_address.as_ref())?;
        if let Some(r) = &self.routing_type {
            w.text_elem("t:RoutingType", r.as_str())?;
        }
        w.opt_text("t:MailboxType", self.mailbox_type.as_ref())
    }

    pub fn write_as(&self, w: &mut XmlWriter, name: &str) -> Result<(), EwsError> {
        w.start(name, &[])?;
        self.write_fields(w)?;
        w.end(name)
    }

    pub fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            name: el.child_text("Name").map(str::to_owned),
            email_address: el.child_text("EmailAddress").map(str::to_owned),
            routing_type: el.child_text("RoutingType").map(RoutingType::parse),
            mailbox_type: opt_enum(el, "MailboxType"),
        })
    }

    /// Reads `<Wrapper><Mailbox>..</Mailbox></Wrapper>` (Organizer, From, Sender).
    pub fn read_wrapped(el: &Element) -> Result<Self, EwsError> {
        Mailbox::read(el.req_child("Mailbox")?)
    }

    /// Writes `<name><t:Mailbox>..</t:Mailbox></name>`.
    pub fn write_wrapped(&self, w: &mut XmlWriter, name: &str) -> Result<(), EwsError> {
        w.start(name, &[])?;
        self.write_as(w, "t:Mailbox")?;
        w.end(name)
    }
}

wire_enum!(
    /// `t:ResponseTypeType`: an attendee's answer.
    ResponseType {
        Unknown = "Unknown",
        Organizer = "Organizer",
        Tentative = "Tentative",
        Accept = "Accept",
        Decline = "Decline",
        NoResponseReceived = "NoResponseReceived",
    }
);

/// `t:Attendee`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attendee {
    pub mailbox: Mailbox,
    pub response_type: Option<ResponseType>,
    pub last_response_time: Option<chrono::DateTime<chrono::Utc>>,
}

impl Attendee {
    pub fn new(mailbox: Mailbox) -> Self {
        Self {
            mailbox,
            ..Self::default()
        }
    }

    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        w.start("t:Attendee", &[])?;
        self.mailbox.write_as(w, "t:Mailbox")?;
        w.opt_text("t:ResponseType", self.response_type.as_ref())?;
        if let Some(t) = &self.last_response_time {
            w.text_elem("t:LastResponseTime", &super::xml::fmt_datetime(t))?;
        }
        w.end("t:Attendee")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            mailbox: Mailbox::read_wrapped(el)?,
            response_type: opt_enum(el, "ResponseType"),
            last_response_time: el.child_datetime("LastResponseTime")?,
        })
    }

    /// Writes `<name>` holding attendees, nothing when the list is empty.
    pub fn write_list(list: &[Attendee], w: &mut XmlWriter, name: &str) -> Result<(), EwsError> {
        if list.is_empty() {
            return Ok(());
        }
        w.start(name, &[])?;
        for a in list {
            a.write(w)?;
        }
        w.end(name)
    }

    pub fn read_list(parent: &Element, name: &str) -> Result<Vec<Attendee>, EwsError> {
        match parent.child(name) {
            None => Ok(Vec::new()),
            Some(list) => list.children_named("Attendee").map(Attendee::read).collect(),
        }
    }
}

/// Reads `<name><t:Mailbox/>...</name>` (ToRecipients and the like).
pub fn read_mailbox_list(parent: &Element, name: &str) -> Result<Vec<Mailbox>, EwsError> {
    match parent.child(name) {
        None => Ok(Vec::new()),
        Some(list) => list.children_named("Mailbox").map(Mailbox::read).collect(),
    }
}

/// Writes `<name><t:Mailbox/>...</name>`, nothing when empty.
pub fn write_mailbox_list(list: &[Mailbox], w: &mut XmlWriter, name: &str) -> Result<(), EwsError> {
    if list.is_empty() {
        return Ok(());
    }
    w.start(name, &[])?;
    for m in list {
        m.write_as(w, "t:Mailbox")?;
    }
    w.end(name)
}

wire_enum!(
    /// `t:BodyTypeType`.
    BodyType {
        Text = "Text",
        Html = "HTML",
    }
);

/// `t:Body`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub body_type: BodyType,
    pub content: String,
}

impl Body {
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            body_type: BodyType::Text,
            content: content.into(),
        }
    }

    pub fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        w.text_elem_attrs("t:Body", &[("BodyType", self.body_type.as_str())], &self.content)
    }

    pub fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            body_type: el
                .attr("BodyType")
                .map(str::parse)
                .transpose()?
                .unwrap_or(BodyType::Text),
            // Bodies keep their whitespace; only element text is trimmed elsewhere.
            content: el.text.clone(),
        })
    }
}

wire_enum!(
    /// `t:MapiPropertyTypeType` values resa uses.
    MapiPropertyType {
        Binary = "Binary",
        Boolean = "Boolean",
        Integer = "Integer",
        Long = "Long",
        String = "String",
        SystemTime = "SystemTime",
        Clsid = "CLSID",
        BinaryArray = "BinaryArray",
        StringArray = "StringArray",
    }
);

/// `t:ExtendedFieldURI`: names a MAPI property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedFieldUri {
    pub distinguished_property_set_id: Option<String>,
    /// A property set GUID, such as PSETID_Meeting.
    pub property_set_id: Option<String>,
    pub property_tag: Option<String>,
    pub property_name: Option<String>,
    pub property_id: Option<u32>,
    pub property_type: MapiPropertyType,
}

/// PSETID_Meeting, home of GlobalObjectId and CleanGlobalObjectId.
pub const PSETID_MEETING: &str = "6ED8DA90-450B-101B-98DA-00AA003F1305";
/// PSETID_Common, home of PidLidVerbStream.
pub const PSETID_COMMON: &str = "00062008-0000-0000-C000-000000000046";

impl ExtendedFieldUri {
    /// PidLidGlobalObjectId (PSETID_Meeting, 0x3, Binary).
    pub fn global_object_id() -> Self {
        Self::by_id(PSETID_MEETING, 0x3, MapiPropertyType::Binary)
    }

    /// PidLidCleanGlobalObjectId (PSETID_Meeting, 0x23, Binary).
    pub fn clean_global_object_id() -> Self {
        Self::by_id(PSETID_MEETING, 0x23, MapiPropertyType::Binary)
    }

    /// PidLidVerbStream (PSETID_Common, 0x8520, Binary): voting buttons.
    pub fn verb_stream() -> Self {
        Self::by_id(PSETID_COMMON, 0x8520, MapiPropertyType::Binary)
    }

    pub fn by_id(set: &str, id: u32, property_type: MapiPropertyType) -> Self {
        Self {
            distinguished_property_set_id: None,
            property_set_id: Some(set.to_owned()),
            property_tag: None,
            property_name: None,
            property_id: Some(id),
            property_type,
        }
    }

    /// Same property, comparing the GUID case-insensitively as Exchange does.
    pub fn same_property(&self, other: &ExtendedFieldUri) -> bool {
        let eq = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            (None, None) => true,
            _ => false,
        };
        eq(&self.property_set_id, &other.property_set_id)
            && eq(
                &self.distinguished_property_set_id,
                &other.distinguished_property_set_id,
            )
            && eq(&self.property_tag, &other.property_tag)
            && self.property_name == other.property_name
            && self.property_id == other.property_id
    }

    pub fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        let id = self.property_id.map(|i| i.to_string());
        let mut attrs: Vec<(&str, &str)> = Vec::new();
        if let Some(v) = &self.distinguished_property_set_id {
            attrs.push(("DistinguishedPropertySetId", v));
        }
        if let Some(v) = &self.property_set_id {
            attrs.push(("PropertySetId", v));
        }
        if let Some(v) = &self.property_tag {
            attrs.push(("PropertyTag", v));
        }
        if let Some(v) = &self.property_name {
            attrs.push(("PropertyName", v));
        }
        if let Some(v) = &id {
            attrs.push(("PropertyId", v));
        }
        attrs.push(("PropertyType", self.property_type.as_str()));
        w.empty("t:ExtendedFieldURI", &attrs)
    }

    pub fn read(el: &Element) -> Result<Self, EwsError> {
        let property_id = match el.attr("PropertyId") {
            None => None,
            Some(s) => Some(parse_u32_any(s)?),
        };
        Ok(Self {
            distinguished_property_set_id: el.attr("DistinguishedPropertySetId").map(str::to_owned),
            property_set_id: el.attr("PropertySetId").map(str::to_owned),
            property_tag: el.attr("PropertyTag").map(str::to_owned),
            property_name: el.attr("PropertyName").map(str::to_owned),
            property_id,
            property_type: el.req_attr("PropertyType")?.parse()?,
        })
    }
}

fn parse_u32_any(s: &str) -> Result<u32, EwsError> {
    let s = s.trim();
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| EwsError::malformed(format!("bad property id {s:?}")))
}

/// `t:ExtendedProperty`: a MAPI property and its value (text as on the wire;
/// Binary values are base64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedProperty {
    pub uri: ExtendedFieldUri,
    pub value: Option<String>,
    pub values: Vec<String>,
}

impl ExtendedProperty {
    pub fn binary(uri: ExtendedFieldUri, bytes: &[u8]) -> Self {
        Self {
            uri,
            value: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            values: Vec::new(),
        }
    }

    /// The value decoded as base64, for Binary properties.
    pub fn as_binary(&self) -> Option<Vec<u8>> {
        let v = self.value.as_deref()?;
        base64::engine::general_purpose::STANDARD.decode(v.trim()).ok()
    }

    pub fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        w.start("t:ExtendedProperty", &[])?;
        self.uri.write(w)?;
        if let Some(v) = &self.value {
            w.text_elem("t:Value", v)?;
        } else if !self.values.is_empty() {
            w.start("t:Values", &[])?;
            for v in &self.values {
                w.text_elem("t:Value", v)?;
            }
            w.end("t:Values")?;
        }
        w.end("t:ExtendedProperty")
    }

    pub fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            uri: ExtendedFieldUri::read(el.req_child("ExtendedFieldURI")?)?,
            value: el.child("Value").map(|v| v.text.clone()),
            values: el
                .child("Values")
                .map(|vs| vs.children_named("Value").map(|v| v.text.clone()).collect())
                .unwrap_or_default(),
        })
    }
}

wire_enum!(
    /// `t:DayOfWeekType` (with the grouped values Day, Weekday, WeekendDay).
    DayOfWeek {
        Sunday = "Sunday",
        Monday = "Monday",
        Tuesday = "Tuesday",
        Wednesday = "Wednesday",
        Thursday = "Thursday",
        Friday = "Friday",
        Saturday = "Saturday",
        Day = "Day",
        Weekday = "Weekday",
        WeekendDay = "WeekendDay",
    }
);

wire_enum!(
    /// `t:DayOfWeekIndexType`.
    DayOfWeekIndex {
        First = "First",
        Second = "Second",
        Third = "Third",
        Fourth = "Fourth",
        Last = "Last",
    }
);

wire_enum!(
    /// `t:MonthNamesType`.
    Month {
        January = "January",
        February = "February",
        March = "March",
        April = "April",
        May = "May",
        June = "June",
        July = "July",
        August = "August",
        September = "September",
        October = "October",
        November = "November",
        December = "December",
    }
);

fn write_days(w: &mut XmlWriter, days: &[DayOfWeek]) -> Result<(), EwsError> {
    let s: Vec<&str> = days.iter().map(|d| d.as_str()).collect();
    w.text_elem("t:DaysOfWeek", &s.join(" "))
}

fn read_days(el: &Element) -> Result<Vec<DayOfWeek>, EwsError> {
    el.req_child("DaysOfWeek")?
        .text()
        .split_whitespace()
        .map(str::parse)
        .collect()
}

fn req_parse<T: FromStr>(el: &Element, name: &str) -> Result<T, EwsError> {
    el.child_parse(name)?
        .ok_or_else(|| EwsError::malformed(format!("<{}> lacks <{name}>", el.name)))
}

/// A recurrence pattern (`t:RecurrencePatternTypes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecurrencePattern {
    Daily {
        interval: u32,
    },
    Weekly {
        interval: u32,
        days_of_week: Vec<DayOfWeek>,
        /// Exchange 2010 and later.
        first_day_of_week: Option<DayOfWeek>,
    },
    AbsoluteMonthly {
        interval: u32,
        day_of_month: u32,
    },
    RelativeMonthly {
        interval: u32,
        days_of_week: DayOfWeek,
        day_of_week_index: DayOfWeekIndex,
    },
    AbsoluteYearly {
        day_of_month: u32,
        month: Month,
    },
    RelativeYearly {
        days_of_week: DayOfWeek,
        day_of_week_index: DayOfWeekIndex,
        month: Month,
    },
}

/// A recurrence range (`t:RecurrenceRangeTypes`). Dates are calendar days;
/// a zone suffix on the wire is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecurrenceRange {
    NoEnd { start: NaiveDate },
    EndDate { start: NaiveDate, end: NaiveDate },
    Numbered { start: NaiveDate, count: u32 },
}

/// `t:Recurrence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurrence {
    pub pattern: RecurrencePattern,
    pub range: RecurrenceRange,
}

fn fmt_date(d: &NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

impl Recurrence {
    pub fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        w.start("t:Recurrence", &[])?;
        match &self.pattern {
            RecurrencePattern::Daily { interval } => {
                w.start("t:DailyRecurrence", &[])?;
                w.text_elem("t:Interval", &interval.to_string())?;
                w.end("t:DailyRecurrence")?;
            }
            RecurrencePattern::Weekly {
                interval,
                days_of_week,
                first_day_of_week,
            } => {
                w.start("t:WeeklyRecurrence", &[])?;
                w.text_elem("t:Interval", &interval.to_string())?;
                write_days(w, days_of_week)?;
                if w.version >= ServerVersion::Exchange2010_SP2 {
                    w.opt_text("t:FirstDayOfWeek", first_day_of_week.as_ref())?;
                }
                w.end("t:WeeklyRecurrence")?;
            }
            RecurrencePattern::AbsoluteMonthly { interval, day_of_month } => {
                w.start("t:AbsoluteMonthlyRecurrence", &[])?;
                w.text_elem("t:Interval", &interval.to_string())?;
                w.text_elem("t:DayOfMonth", &day_of_month.to_string())?;
                w.end("t:AbsoluteMonthlyRecurrence")?;
            }
            RecurrencePattern::RelativeMonthly {
                interval,
                days_of_week,
                day_of_week_index,
            } => {
                w.start("t:RelativeMonthlyRecurrence", &[])?;
                w.text_elem("t:Interval", &interval.to_string())?;
                w.text_elem("t:DaysOfWeek", days_of_week.as_str())?;
                w.text_elem("t:DayOfWeekIndex", day_of_week_index.as_str())?;
                w.end("t:RelativeMonthlyRecurrence")?;
            }
            RecurrencePattern::AbsoluteYearly { day_of_month, month } => {
                w.start("t:AbsoluteYearlyRecurrence", &[])?;
                w.text_elem("t:DayOfMonth", &day_of_month.to_string())?;
                w.text_elem("t:Month", month.as_str())?;
                w.end("t:AbsoluteYearlyRecurrence")?;
            }
            RecurrencePattern::RelativeYearly {
                days_of_week,
                day_of_week_index,
                month,
            } => {
                w.start("t:RelativeYearlyRecurrence", &[])?;
                w.text_elem("t:DaysOfWeek", days_of_week.as_str())?;
                w.text_elem("t:DayOfWeekIndex", day_of_week_index.as_str())?;
                w.text_elem("t:Month", month.as_str())?;
                w.end("t:RelativeYearlyRecurrence")?;
            }
        }
        match &self.range {
            RecurrenceRange::NoEnd { start } => {
                w.start("t:NoEndRecurrence", &[])?;
                w.text_elem("t:StartDate", &fmt_date(start))?;
                w.end("t:NoEndRecurrence")?;
            }
            RecurrenceRange::EndDate { start, end } => {
                w.start("t:EndDateRecurrence", &[])?;
                w.text_elem("t:StartDate", &fmt_date(start))?;
                w.text_elem("t:EndDate", &fmt_date(end))?;
                w.end("t:EndDateRecurrence")?;
            }
            RecurrenceRange::Numbered { start, count } => {
                w.start("t:NumberedRecurrence", &[])?;
                w.text_elem("t:StartDate", &fmt_date(start))?;
                w.text_elem("t:NumberOfOccurrences", &count.to_string())?;
                w.end("t:NumberedRecurrence")?;
            }
        }
        w.end("t:Recurrence")
    }

    pub fn read(el: &Element) -> Result<Self, EwsError> {
        let mut pattern = None;
        let mut range = None;
        for c in &el.children {
            match c.name.as_str() {
                "DailyRecurrence" => {
                    pattern = Some(RecurrencePattern::Daily {
                        interval: req_parse(c, "Interval")?,
                    })
                }
                "WeeklyRecurrence" => {
                    pattern = Some(RecurrencePattern::Weekly {
                        interval: req_parse(c, "Interval")?,
                        days_of_week: read_days(c)?,
                        first_day_of_week: opt_enum(c, "FirstDayOfWeek"),
                    })
                }
                "AbsoluteMonthlyRecurrence" => {
                    pattern = Some(RecurrencePattern::AbsoluteMonthly {
                        interval: req_parse(c, "Interval")?,
                        day_of_month: req_parse(c, "DayOfMonth")?,
                    })
                }
                "RelativeMonthlyRecurrence" => {
                    pattern = Some(RecurrencePattern::RelativeMonthly {
                        interval: req_parse(c, "Interval")?,
                        days_of_week: req_parse(c, "DaysOfWeek")?,
                        day_of_week_index: req_parse(c, "DayOfWeekIndex")?,
                    })
                }
                "AbsoluteYearlyRecurrence" => {
                    pattern = Some(RecurrencePattern::AbsoluteYearly {
                        day_of_month: req_parse(c, "DayOfMonth")?,
                        month: req_parse(c, "Month")?,
                    })
                }
                "RelativeYearlyRecurrence" => {
                    pattern = Some(RecurrencePattern::RelativeYearly {
                        days_of_week: req_parse(c, "DaysOfWeek")?,
                        day_of_week_index: req_parse(c, "DayOfWeekIndex")?,
                        month: req_parse(c, "Month")?,
                    })
                }
                "NoEndRecurrence" => {
                    range = Some(RecurrenceRange::NoEnd {
                        start: parse_date(c.req_child("StartDate")?.text())?,
                    })
                }
                "EndDateRecurrence" => {
                    range = Some(RecurrenceRange::EndDate {
                        start: parse_date(c.req_child("StartDate")?.text())?,
                        end: parse_date(c.req_child("EndDate")?.text())?,
                    })
                }
                "NumberedRecurrence" => {
                    range = Some(RecurrenceRange::Numbered {
                        start: parse_date(c.req_child("StartDate")?.text())?,
                        count: req_parse(c, "NumberOfOccurrences")?,
                    })
                }
                _ => {}
            }
        }
        Ok(Self {
            pattern: pattern.ok_or_else(|| EwsError::malformed("Recurrence without pattern"))?,
            range: range.ok_or_else(|| EwsError::malformed("Recurrence without range"))?,
        })
    }
}

/// `t:OccurrenceInfoType` (FirstOccurrence, LastOccurrence, Occurrence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccurrenceInfo {
    pub item_id: ItemId,
    pub start: chrono::DateTime<chrono::Utc>,
    pub end: chrono::DateTime<chrono::Utc>,
    pub original_start: chrono::DateTime<chrono::Utc>,
}

impl OccurrenceInfo {
    pub fn write_as(&self, w: &mut XmlWriter, name: &str) -> Result<(), EwsError> {
        use super::xml::fmt_datetime;
        w.start(name, &[])?;
        self.item_id.write_as(w, "t:ItemId")?;
        w.text_elem("t:Start", &fmt_datetime(&self.start))?;
        w.text_elem("t:End", &fmt_datetime(&self.end))?;
        w.text_elem("t:OriginalStart", &fmt_datetime(&self.original_start))?;
        w.end(name)
    }

    pub fn read(el: &Element) -> Result<Self, EwsError> {
        let req = |n: &str| {
            el.child_datetime(n)?
                .ok_or_else(|| EwsError::malformed(format!("<{}> lacks <{n}>", el.name)))
        };
        Ok(Self {
            item_id: ItemId::read(el.req_child("ItemId")?)?,
            start: req("Start")?,
            end: req("End")?,
            original_start: req("OriginalStart")?,
        })
    }
}

/// An xs:duration restricted to what Exchange sends for time zone offsets
/// (`-PT8H`, `PT0M`, `P0DT1H30M`), as a signed time delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XsDuration(pub TimeDelta);

impl FromStr for XsDuration {
    type Err = EwsError;
    fn from_str(s: &str) -> Result<Self, EwsError> {
        let bad = || EwsError::malformed(format!("bad duration {s:?}"));
        let t = s.trim();
        let (neg, t) = match t.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, t),
        };
        let t = t.strip_prefix('P').ok_or_else(bad)?;
        let mut secs: i64 = 0;
        let mut in_time = false;
        let mut num = String::new();
        for ch in t.chars() {
            match ch {
                'T' => in_time = true,
                '0'..='9' | '.' => num.push(ch),
                unit => {
                    let n: f64 = num.parse().map_err(|_| bad())?;
                    num.clear();
                    let mult = match (unit, in_time) {
                        ('D', false) => 86_400.0,
                        ('H', true) => 3_600.0,
                        ('M', true) => 60.0,
                        ('S', true) => 1.0,
                        _ => return Err(bad()),
                    };
                    // Whole seconds are all Exchange uses for offsets.
                    secs += (n * mult) as i64;
                }
            }
        }
        if !num.is_empty() {
            return Err(bad());
        }
        Ok(XsDuration(TimeDelta::seconds(if neg { -secs } else { secs })))
    }
}

impl std::fmt::Display for XsDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.0.num_seconds();
        let sign = if total < 0 { "-" } else { "" };
        let t = total.unsigned_abs();
        let (h, m, s) = (t / 3600, (t % 3600) / 60, t % 60);
        write!(f, "{sign}PT")?;
        if h > 0 {
            write!(f, "{h}H")?;
        }
        if m > 0 || (h == 0 && s == 0) {
            write!(f, "{m}M")?;
        }
        if s > 0 {
            write!(f, "{s}S")?;
        }
        Ok(())
    }
}

/// When a 2007-style time zone switches (`t:TimeChangeType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeChange {
    pub time_zone_name: Option<String>,
    pub offset: XsDuration,
    /// `(DaysOfWeek, DayOfWeekIndex, Month)` of a RelativeYearlyRecurrence.
    pub relative_yearly: Option<(DayOfWeek, DayOfWeekIndex, Month)>,
    pub absolute_date: Option<NaiveDate>,
    /// xs:time, as sent (`02:00:00`).
    pub time: String,
}

impl TimeChange {
    fn write_as(&self, w: &mut XmlWriter, name: &str) -> Result<(), EwsError> {
        match &self.time_zone_name {
            Some(n) => w.start(name, &[("TimeZoneName", n)])?,
            None => w.start(name, &[])?,
        }
        w.text_elem("t:Offset", &self.offset.to_string())?;
        if let Some((d, i, m)) = &self.relative_yearly {
            w.start("t:RelativeYearlyRecurrence", &[])?;
            w.text_elem("t:DaysOfWeek", d.as_str())?;
            w.text_elem("t:DayOfWeekIndex", i.as_str())?;
            w.text_elem("t:Month", m.as_str())?;
            w.end("t:RelativeYearlyRecurrence")?;
        } else if let Some(d) = &self.absolute_date {
            w.text_elem("t:AbsoluteDate", &fmt_date(d))?;
        }
        w.text_elem("t:Time", &self.time)?;
        w.end(name)
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        let relative_yearly = match el.child("RelativeYearlyRecurrence") {
            None => None,
            Some(r) => Some((
                req_parse(r, "DaysOfWeek")?,
                req_parse(r, "DayOfWeekIndex")?,
                req_parse(r, "Month")?,
            )),
        };
        Ok(Self {
            time_zone_name: el.attr("TimeZoneName").map(str::to_owned),
            offset: req_parse(el, "Offset")?,
            relative_yearly,
            absolute_date: el.child_text("AbsoluteDate").map(parse_date).transpose()?,
            time: el.child_text("Time").unwrap_or("00:00:00").to_owned(),
        })
    }
}

/// `t:MeetingTimeZone` (Exchange 2007): a base offset and DST rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingTimeZone {
    pub time_zone_name: Option<String>,
    pub base_offset: Option<XsDuration>,
    pub standard: Option<TimeChange>,
    pub daylight: Option<TimeChange>,
}

impl MeetingTimeZone {
    pub fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        match &self.time_zone_name {
            Some(n) => w.start("t:MeetingTimeZone", &[("TimeZoneName", n)])?,
            None => w.start("t:MeetingTimeZone", &[])?,
        }
        w.opt_text("t:BaseOffset", self.base_offset.as_ref())?;
        if let Some(s) = &self.standard {
            s.write_as(w, "t:Standard")?;
        }
        if let Some(d) = &self.daylight {
            d.write_as(w, "t:Daylight")?;
        }
        w.end("t:MeetingTimeZone")
    }

    pub fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            time_zone_name: el.attr("TimeZoneName").map(str::to_owned),
            base_offset: el.child_parse("BaseOffset")?,
            standard: el.child("Standard").map(TimeChange::read).transpose()?,
            daylight: el.child("Daylight").map(TimeChange::read).transpose()?,
        })
    }

    /// The IANA zone, when the name is a Windows id CLDR knows.
    pub fn iana(&self) -> Option<chrono_tz::Tz> {
        self.time_zone_name.as_deref().and_then(windows_to_iana)
    }

    /// Describes `tz` as Exchange 2007 wants it, from the rules in force in
    /// `year`: the offsets and the yearly transition days ("last Sunday of
    /// March at 02:00"). A zone without DST gets no Standard/Daylight parts.
    pub fn from_iana(tz: chrono_tz::Tz, year: i32) -> Self {
        use chrono::{Datelike as _, Offset as _, TimeZone as _};
        let offset_at =
            |t: chrono::DateTime<chrono::Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc();
        let start = chrono::Utc
            .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        // Transitions fall on quarter hours; a year has at most two of them
        // in the zones Exchange can describe.
        let step = TimeDelta::minutes(15);
        let mut transitions = Vec::new();
        let mut prev = offset_at(start);
        let mut t = start;
        while t.year() == year {
            let now = offset_at(t);
            if now != prev {
                transitions.push((t, prev, now));
                prev = now;
            }
            t += step;
        }
        let name = iana_to_windows(tz.name()).map(str::to_owned);
        let standard_offset = transitions
            .iter()
            .map(|(_, before, after)| (*before).min(*after))
            .min()
            .unwrap_or(prev);
        let bias = |secs: i32| XsDuration(TimeDelta::seconds(-i64::from(secs)));
        let change = |(at, before, after): &(chrono::DateTime<chrono::Utc>, i32, i32)| {
            // Exchange gives the local wall time before the change.
            let local = at.naive_utc() + TimeDelta::seconds(i64::from(*before));
            let day = local.date();
            let last = day + TimeDelta::days(7);
            let index = if last.month() != day.month() {
                DayOfWeekIndex::Last
            } else {
                match (day.day() - 1) / 7 {
                    0 => DayOfWeekIndex::First,
                    1 => DayOfWeekIndex::Second,
                    2 => DayOfWeekIndex::Third,
                    _ => DayOfWeekIndex::Fourth,
                }
            };
            let weekday = match day.weekday() {
                chrono::Weekday::Mon => DayOfWeek::Monday,
                chrono::Weekday::Tue => DayOfWeek::Tuesday,
                chrono::Weekday::Wed => DayOfWeek::Wednesday,
                chrono::Weekday::Thu => DayOfWeek::Thursday,
                chrono::Weekday::Fri => DayOfWeek::Friday,
                chrono::Weekday::Sat => DayOfWeek::Saturday,
                chrono::Weekday::Sun => DayOfWeek::Sunday,
            };
            let month = Month::ALL.get(day.month0() as usize).copied().unwrap_or(Month::January);
            TimeChange {
                time_zone_name: None,
                offset: bias(*after - standard_offset),
                relative_yearly: Some((weekday, index, month)),
                absolute_date: None,
                time: local.format("%H:%M:%S").to_string(),
            }
        };
        let to_daylight = transitions.iter().find(|(_, b, a)| a > b);
        let to_standard = transitions.iter().find(|(_, b, a)| a < b);
        let (standard, daylight) = match (to_standard, to_daylight) {
            (Some(s), Some(d)) => (Some(change(s)), Some(change(d))),
            _ => (None, None),
        };
        Self {
            time_zone_name: name,
            base_offset: Some(bias(standard_offset)),
            standard,
            daylight,
        }
    }
}

/// `t:StartTimeZone` / `t:EndTimeZone` / `t:TimeZoneDefinition` (2010+).
/// Only the Windows id and name are kept: resa maps the id to an IANA zone
/// instead of interpreting the transitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeZoneDefinition {
    pub id: String,
    pub name: Option<String>,
}

impl TimeZoneDefinition {
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: None,
        }
    }

    pub fn write_as(&self, w: &mut XmlWriter, name: &str) -> Result<(), EwsError> {
        let mut attrs = vec![("Id", self.id.as_str())];
        if let Some(n) = &self.name {
            attrs.push(("Name", n));
        }
        w.empty(name, &attrs)
    }

    pub fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            id: el.attr("Id").unwrap_or_default().to_owned(),
            name: el.attr("Name").map(str::to_owned),
        })
    }

    pub fn iana(&self) -> Option<chrono_tz::Tz> {
        windows_to_iana(&self.id)
    }
}

/// Maps a Windows time zone id to its IANA zone (CLDR golden mapping).
pub fn windows_to_iana(windows: &str) -> Option<chrono_tz::Tz> {
    let table = super::windows_zones::WINDOWS_TO_IANA;
    let i = table.binary_search_by(|(w, _)| (*w).cmp(windows)).ok()?;
    table[i].1.parse().ok()
}

/// Maps an IANA zone name to a Windows id, for requests that need one.
pub fn iana_to_windows(iana: &str) -> Option<&'static str> {
    let table = super::windows_zones::IANA_TO_WINDOWS;
    let i = table.binary_search_by(|(z, _)| (*z).cmp(iana)).ok()?;
    Some(table[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cldr_zone_parses_with_chrono_tz() {
        for (w, iana) in super::super::windows_zones::WINDOWS_TO_IANA {
            assert!(iana.parse::<chrono_tz::Tz>().is_ok(), "{w} -> {iana}");
        }
        for (iana, w) in super::super::windows_zones::IANA_TO_WINDOWS {
            assert!(iana.parse::<chrono_tz::Tz>().is_ok(), "{iana} <- {w}");
        }
        assert_eq!(windows_to_iana("Romance Standard Time"), Some(chrono_tz::Europe::Paris));
        assert_eq!(iana_to_windows("Europe/Paris"), Some("Romance Standard Time"));
    }

    #[test]
    fn paris_and_sydney_as_2007_zones() {
        let paris = MeetingTimeZone::from_iana(chrono_tz::Europe::Paris, 2026);
        assert_eq!(paris.time_zone_name.as_deref(), Some("Romance Standard Time"));
        assert_eq!(paris.base_offset.map(|o| o.to_string()), Some("-PT1H".into()));
        let d = paris.daylight.clone().unwrap_or_else(|| panic!("no DST"));
        assert_eq!(
            d.relative_yearly,
            Some((DayOfWeek::Sunday, DayOfWeekIndex::Last, Month::March))
        );
        assert_eq!((d.time.as_str(), d.offset.to_string()), ("02:00:00", "-PT1H".into()));
        let s = paris.standard.clone().unwrap_or_else(|| panic!("no standard"));
        assert_eq!(
            s.relative_yearly,
            Some((DayOfWeek::Sunday, DayOfWeekIndex::Last, Month::October))
        );
        assert_eq!((s.time.as_str(), s.offset.to_string()), ("03:00:00", "PT0M".into()));
        assert_eq!(paris.iana(), Some(chrono_tz::Europe::Paris));

        // Southern hemisphere: DST starts in October, ends in April.
        let sydney = MeetingTimeZone::from_iana(chrono_tz::Australia::Sydney, 2026);
        assert_eq!(sydney.base_offset.map(|o| o.to_string()), Some("-PT10H".into()));
        let d = sydney.daylight.unwrap_or_else(|| panic!("no DST"));
        assert_eq!(
            d.relative_yearly,
            Some((DayOfWeek::Sunday, DayOfWeekIndex::First, Month::October))
        );

        let tokyo = MeetingTimeZone::from_iana(chrono_tz::Asia::Tokyo, 2026);
        assert!(tokyo.standard.is_none() && tokyo.daylight.is_none());
        assert_eq!(tokyo.base_offset.map(|o| o.to_string()), Some("-PT9H".into()));
    }

    #[test]
    fn smtp_or_legacy_dn() {
        let ex = Mailbox {
            email_address: Some("/O=MAIRIE/OU=EXCHANGE/CN=RECIPIENTS/CN=AGENT".into()),
            routing_type: Some(RoutingType::Ex),
            ..Mailbox::default()
        };
        assert_eq!(ex.smtp_address(), None);
        assert!(ex.legacy_dn().is_some());
        let smtp = Mailbox::smtp("agent@mairie.fr");
        assert_eq!(smtp.smtp_address(), Some("agent@mairie.fr"));
        assert_eq!(smtp.legacy_dn(), None);
    }

    #[test]
    fn durations() {
        for (s, secs, back) in [
            ("-PT8H", -8 * 3600, "-PT8H"),
            ("PT0M", 0, "PT0M"),
            ("P0DT1H30M", 5400, "PT1H30M"),
            ("PT60M", 3600, "PT1H"),
        ] {
            let d: XsDuration = s.parse().unwrap_or(XsDuration(TimeDelta::MAX));
            assert_eq!(d.0.num_seconds(), secs, "{s}");
            assert_eq!(d.to_string(), back);
        }
        assert!("8H".parse::<XsDuration>().is_err());
        assert!("PT8".parse::<XsDuration>().is_err());
    }
}
