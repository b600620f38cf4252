//! Items as EWS sends them: messages, calendar items and meeting messages,
//! plus the response shapes that choose which of their properties come back.
//!
//! One struct carries the properties of every item kind resa reads, with
//! [`ItemKind`] saying which element it is. The writer emits, for each kind,
//! only the properties that kind's schema type has, in schema order, and
//! leaves out what the target version lacks (StartTimeZone on 2007,
//! the 2013 calendar fields on cancellations and responses).

use chrono::{DateTime, Utc};

use super::error::EwsError;
use super::soap::ServerVersion;
use super::types::{
    Attendee, Body, ExtendedFieldUri, ExtendedProperty, ItemId, Mailbox, MeetingTimeZone, OccurrenceInfo, Recurrence,
    ResponseType, TimeZoneDefinition, opt_enum, read_mailbox_list, wire_enum, write_mailbox_list,
};
use super::xml::{Element, Wire, XmlWriter, fmt_datetime};

wire_enum!(
    /// `t:LegacyFreeBusyType`.
    LegacyFreeBusyStatus {
        Free = "Free",
        Tentative = "Tentative",
        Busy = "Busy",
        Oof = "OOF",
        NoData = "NoData",
        WorkingElsewhere = "WorkingElsewhere",
    }
);

wire_enum!(
    /// `t:CalendarItemTypeType`.
    CalendarItemType {
        Single = "Single",
        Occurrence = "Occurrence",
        Exception = "Exception",
        RecurringMaster = "RecurringMaster",
    }
);

wire_enum!(
    /// `t:MeetingRequestTypeType`.
    MeetingRequestType {
        None = "None",
        FullUpdate = "FullUpdate",
        InformationalUpdate = "InformationalUpdate",
        NewMeetingRequest = "NewMeetingRequest",
        Outdated = "Outdated",
        SilentUpdate = "SilentUpdate",
        PrincipalWantsCopy = "PrincipalWantsCopy",
    }
);

/// Which item element this is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ItemKind {
    #[default]
    Item,
    Message,
    CalendarItem,
    MeetingMessage,
    MeetingRequest,
    MeetingResponse,
    MeetingCancellation,
    /// Contacts, tasks, posts...: kept by name with the common fields only.
    Other(String),
}

impl ItemKind {
    pub fn element_name(&self) -> &str {
        match self {
            ItemKind::Item => "Item",
            ItemKind::Message => "Message",
            ItemKind::CalendarItem => "CalendarItem",
            ItemKind::MeetingMessage => "MeetingMessage",
            ItemKind::MeetingRequest => "MeetingRequest",
            ItemKind::MeetingResponse => "MeetingResponse",
            ItemKind::MeetingCancellation => "MeetingCancellation",
            ItemKind::Other(s) => s,
        }
    }

    /// Recognizes an item element by local name; `None` for non-items.
    pub fn from_element_name(name: &str) -> Option<Self> {
        Some(match name {
            "Item" => ItemKind::Item,
            "Message" => ItemKind::Message,
            "CalendarItem" => ItemKind::CalendarItem,
            "MeetingMessage" => ItemKind::MeetingMessage,
            "MeetingRequest" => ItemKind::MeetingRequest,
            "MeetingResponse" => ItemKind::MeetingResponse,
            "MeetingCancellation" => ItemKind::MeetingCancellation,
            "Contact" | "DistributionList" | "Task" | "PostItem" => ItemKind::Other(name.to_owned()),
            _ => return None,
        })
    }

    fn is_message(&self) -> bool {
        matches!(
            self,
            ItemKind::Message
                | ItemKind::MeetingMessage
                | ItemKind::MeetingRequest
                | ItemKind::MeetingResponse
                | ItemKind::MeetingCancellation
        )
    }

    fn is_meeting_message(&self) -> bool {
        self.is_message() && *self != ItemKind::Message
    }
}

/// An item with the properties resa reads or writes. Absent properties are
/// `None` or empty, and are not written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Item {
    pub kind: ItemKind,
    // ItemType
    pub item_id: Option<ItemId>,
    pub parent_folder_id: Option<ItemId>,
    pub item_class: Option<String>,
    pub subject: Option<String>,
    pub body: Option<Body>,
    pub date_time_received: Option<DateTime<Utc>>,
    pub date_time_sent: Option<DateTime<Utc>>,
    pub date_time_created: Option<DateTime<Utc>>,
    pub reminder_is_set: Option<bool>,
    pub extended_properties: Vec<ExtendedProperty>,
    pub last_modified_time: Option<DateTime<Utc>>,
    // MessageType
    pub sender: Option<Mailbox>,
    pub to_recipients: Vec<Mailbox>,
    pub cc_recipients: Vec<Mailbox>,
    pub from: Option<Mailbox>,
    pub internet_message_id: Option<String>,
    pub is_read: Option<bool>,
    /// Message-level on messages, calendar-level on calendar items.
    pub is_response_requested: Option<bool>,
    // MeetingMessageType
    pub associated_calendar_item_id: Option<ItemId>,
    pub is_delegated: Option<bool>,
    pub is_out_of_date: Option<bool>,
    pub has_been_processed: Option<bool>,
    pub response_type: Option<ResponseType>,
    // Shared by meeting messages and calendar items
    pub uid: Option<String>,
    pub recurrence_id: Option<DateTime<Utc>>,
    pub date_time_stamp: Option<DateTime<Utc>>,
    // MeetingRequestMessageType
    pub meeting_request_type: Option<MeetingRequestType>,
    pub intended_free_busy_status: Option<LegacyFreeBusyStatus>,
    // Calendar properties
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub original_start: Option<DateTime<Utc>>,
    pub is_all_day_event: Option<bool>,
    pub legacy_free_busy_status: Option<LegacyFreeBusyStatus>,
    pub location: Option<String>,
    pub is_meeting: Option<bool>,
    pub is_cancelled: Option<bool>,
    pub is_recurring: Option<bool>,
    pub meeting_request_was_sent: Option<bool>,
    pub calendar_item_type: Option<CalendarItemType>,
    pub my_response_type: Option<ResponseType>,
    pub organizer: Option<Mailbox>,
    pub required_attendees: Vec<Attendee>,
    pub optional_attendees: Vec<Attendee>,
    pub resources: Vec<Attendee>,
    pub appointment_sequence_number: Option<u32>,
    pub appointment_state: Option<u32>,
    pub recurrence: Option<Recurrence>,
    pub first_occurrence: Option<OccurrenceInfo>,
    pub last_occurrence: Option<OccurrenceInfo>,
    pub modified_occurrences: Vec<OccurrenceInfo>,
    /// Original starts of deleted occurrences.
    pub deleted_occurrences: Vec<DateTime<Utc>>,
    pub meeting_time_zone: Option<MeetingTimeZone>,
    pub start_time_zone: Option<TimeZoneDefinition>,
    pub end_time_zone: Option<TimeZoneDefinition>,
    // MeetingResponseMessageType (2013+)
    pub proposed_start: Option<DateTime<Utc>>,
    pub proposed_end: Option<DateTime<Utc>>,
}

fn opt_dt(w: &mut XmlWriter, name: &str, v: &Option<DateTime<Utc>>) -> Result<(), EwsError> {
    match v {
        Some(t) => w.text_elem(name, &fmt_datetime(t)),
        None => Ok(()),
    }
}

impl Item {
    pub fn new(kind: ItemKind) -> Self {
        Self {
            kind,
            ..Self::default()
        }
    }

    fn extended(&self, uri: &ExtendedFieldUri) -> Option<&ExtendedProperty> {
        self.extended_properties.iter().find(|p| p.uri.same_property(uri))
    }

    /// PidLidGlobalObjectId, decoded: the meeting's identity across mailboxes
    /// (with the instance date for an exception).
    pub fn global_object_id(&self) -> Option<Vec<u8>> {
        self.extended(&ExtendedFieldUri::global_object_id())?.as_binary()
    }

    /// PidLidCleanGlobalObjectId, decoded: the series identity.
    pub fn clean_global_object_id(&self) -> Option<Vec<u8>> {
        self.extended(&ExtendedFieldUri::clean_global_object_id())?.as_binary()
    }

    /// The meeting's IANA zone: StartTimeZone (2010+) first, then the 2007
    /// MeetingTimeZone name. `None` when neither names a zone CLDR maps.
    pub fn time_zone(&self) -> Option<chrono_tz::Tz> {
        self.start_time_zone
            .as_ref()
            .and_then(TimeZoneDefinition::iana)
            .or_else(|| self.meeting_time_zone.as_ref().and_then(MeetingTimeZone::iana))
    }

    fn write_calendar_block(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        let calendar_item = self.kind == ItemKind::CalendarItem;
        opt_dt(w, "t:Start", &self.start)?;
        opt_dt(w, "t:End", &self.end)?;
        opt_dt(w, "t:OriginalStart", &self.original_start)?;
        w.opt_bool("t:IsAllDayEvent", self.is_all_day_event)?;
        w.opt_text("t:LegacyFreeBusyStatus", self.legacy_free_busy_status.as_ref())?;
        w.opt_text("t:Location", self.location.as_ref())?;
        w.opt_bool("t:IsMeeting", self.is_meeting)?;
        w.opt_bool("t:IsCancelled", self.is_cancelled)?;
        w.opt_bool("t:IsRecurring", self.is_recurring)?;
        w.opt_bool("t:MeetingRequestWasSent", self.meeting_request_was_sent)?;
        if calendar_item {
            w.opt_bool("t:IsResponseRequested", self.is_response_requested)?;
        }
        w.opt_text("t:CalendarItemType", self.calendar_item_type.as_ref())?;
        w.opt_text("t:MyResponseType", self.my_response_type.as_ref())?;
        if let Some(o) = &self.organizer {
            o.write_wrapped(w, "t:Organizer")?;
        }
        Attendee::write_list(&self.required_attendees, w, "t:RequiredAttendees")?;
        Attendee::write_list(&self.optional_attendees, w, "t:OptionalAttendees")?;
        Attendee::write_list(&self.resources, w, "t:Resources")?;
        w.opt_text("t:AppointmentSequenceNumber", self.appointment_sequence_number.as_ref())?;
        w.opt_text("t:AppointmentState", self.appointment_state.as_ref())?;
        if let Some(r) = &self.recurrence {
            r.write(w)?;
        }
        if let Some(o) = &self.first_occurrence {
            o.write_as(w, "t:FirstOccurrence")?;
        }
        if let Some(o) = &self.last_occurrence {
            o.write_as(w, "t:LastOccurrence")?;
        }
        if !self.modified_occurrences.is_empty() {
            w.start("t:ModifiedOccurrences", &[])?;
            for o in &self.modified_occurrences {
                o.write_as(w, "t:Occurrence")?;
            }
            w.end("t:ModifiedOccurrences")?;
        }
        if !self.deleted_occurrences.is_empty() {
            w.start("t:DeletedOccurrences", &[])?;
            for d in &self.deleted_occurrences {
                w.start("t:DeletedOccurrence", &[])?;
                w.text_elem("t:Start", &fmt_datetime(d))?;
                w.end("t:DeletedOccurrence")?;
            }
            w.end("t:DeletedOccurrences")?;
        }
        if let Some(tz) = &self.meeting_time_zone {
            tz.write(w)?;
        }
        if w.version >= ServerVersion::Exchange2010_SP2 {
            if let Some(tz) = &self.start_time_zone {
                tz.write_as(w, "t:StartTimeZone")?;
            }
            if let Some(tz) = &self.end_time_zone {
                tz.write_as(w, "t:EndTimeZone")?;
            }
        }
        Ok(())
    }
}

impl Wire for Item {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        let name = format!("t:{}", self.kind.element_name());
        w.start(&name, &[])?;
        // ItemType
        if let Some(id) = &self.item_id {
            id.write_as(w, "t:ItemId")?;
        }
        if let Some(id) = &self.parent_folder_id {
            id.write_as(w, "t:ParentFolderId")?;
        }
        w.opt_text("t:ItemClass", self.item_class.as_ref())?;
        w.opt_text("t:Subject", self.subject.as_ref())?;
        if let Some(b) = &self.body {
            b.write(w)?;
        }
        opt_dt(w, "t:DateTimeReceived", &self.date_time_received)?;
        opt_dt(w, "t:DateTimeSent", &self.date_time_sent)?;
        opt_dt(w, "t:DateTimeCreated", &self.date_time_created)?;
        w.opt_bool("t:ReminderIsSet", self.reminder_is_set)?;
        for p in &self.extended_properties {
            p.write(w)?;
        }
        opt_dt(w, "t:LastModifiedTime", &self.last_modified_time)?;
        // MessageType
        if self.kind.is_message() {
            if let Some(m) = &self.sender {
                m.write_wrapped(w, "t:Sender")?;
            }
            write_mailbox_list(&self.to_recipients, w, "t:ToRecipients")?;
            write_mailbox_list(&self.cc_recipients, w, "t:CcRecipients")?;
            if let Some(m) = &self.from {
                m.write_wrapped(w, "t:From")?;
            }
            w.opt_text("t:InternetMessageId", self.internet_message_id.as_ref())?;
            w.opt_bool("t:IsRead", self.is_read)?;
            w.opt_bool("t:IsResponseRequested", self.is_response_requested)?;
        }
        // MeetingMessageType
        if self.kind.is_meeting_message() {
            if let Some(id) = &self.associated_calendar_item_id {
                id.write_as(w, "t:AssociatedCalendarItemId")?;
            }
            w.opt_bool("t:IsDelegated", self.is_delegated)?;
            w.opt_bool("t:IsOutOfDate", self.is_out_of_date)?;
            w.opt_bool("t:HasBeenProcessed", self.has_been_processed)?;
            w.opt_text("t:ResponseType", self.response_type.as_ref())?;
            w.opt_text("t:UID", self.uid.as_ref())?;
            opt_dt(w, "t:RecurrenceId", &self.recurrence_id)?;
            opt_dt(w, "t:DateTimeStamp", &self.date_time_stamp)?;
        }
        match self.kind {
            ItemKind::MeetingRequest => {
                w.opt_text("t:MeetingRequestType", self.meeting_request_type.as_ref())?;
                w.opt_text("t:IntendedFreeBusyStatus", self.intended_free_busy_status.as_ref())?;
                self.write_calendar_block(w)?;
            }
            ItemKind::CalendarItem => {
                w.opt_text("t:UID", self.uid.as_ref())?;
                opt_dt(w, "t:RecurrenceId", &self.recurrence_id)?;
                opt_dt(w, "t:DateTimeStamp", &self.date_time_stamp)?;
                self.write_calendar_block(w)?;
            }
            ItemKind::MeetingCancellation | ItemKind::MeetingResponse
                if w.version >= ServerVersion::Exchange2013_SP1 =>
            {
                opt_dt(w, "t:Start", &self.start)?;
                opt_dt(w, "t:End", &self.end)?;
                w.opt_text("t:Location", self.location.as_ref())?;
                if let Some(r) = &self.recurrence {
                    r.write(w)?;
                }
                w.opt_text("t:CalendarItemType", self.calendar_item_type.as_ref())?;
                if self.kind == ItemKind::MeetingResponse {
                    opt_dt(w, "t:ProposedStart", &self.proposed_start)?;
                    opt_dt(w, "t:ProposedEnd", &self.proposed_end)?;
                }
            }
            _ => {}
        }
        w.end(&name)
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        let kind = ItemKind::from_element_name(&el.name)
            .ok_or_else(|| EwsError::malformed(format!("<{}> is not an item", el.name)))?;
        let id = |n: &str| el.child(n).map(ItemId::read).transpose();
        let mbox = |n: &str| el.child(n).map(Mailbox::read_wrapped).transpose();
        let occurrences = |n: &str| -> Result<Vec<OccurrenceInfo>, EwsError> {
            match el.child(n) {
                None => Ok(Vec::new()),
                Some(list) => list.children_named("Occurrence").map(OccurrenceInfo::read).collect(),
            }
        };
        let deleted_occurrences = match el.child("DeletedOccurrences") {
            None => Vec::new(),
            Some(list) => list
                .children_named("DeletedOccurrence")
                .filter_map(|d| d.child_datetime("Start").transpose())
                .collect::<Result<Vec<_>, _>>()?,
        };
        Ok(Self {
            kind,
            item_id: id("ItemId")?,
            parent_folder_id: id("ParentFolderId")?,
            item_class: el.child_text("ItemClass").map(str::to_owned),
            subject: el.child_text("Subject").map(str::to_owned),
            body: el.child("Body").map(Body::read).transpose()?,
            date_time_received: el.child_datetime("DateTimeReceived")?,
            date_time_sent: el.child_datetime("DateTimeSent")?,
            date_time_created: el.child_datetime("DateTimeCreated")?,
            reminder_is_set: el.child_bool("ReminderIsSet")?,
            extended_properties: el
                .children_named("ExtendedProperty")
                .map(ExtendedProperty::read)
                .collect::<Result<_, _>>()?,
            last_modified_time: el.child_datetime("LastModifiedTime")?,
            sender: mbox("Sender")?,
            to_recipients: read_mailbox_list(el, "ToRecipients")?,
            cc_recipients: read_mailbox_list(el, "CcRecipients")?,
            from: mbox("From")?,
            internet_message_id: el.child_text("InternetMessageId").map(str::to_owned),
            is_read: el.child_bool("IsRead")?,
            is_response_requested: el.child_bool("IsResponseRequested")?,
            associated_calendar_item_id: id("AssociatedCalendarItemId")?,
            is_delegated: el.child_bool("IsDelegated")?,
            is_out_of_date: el.child_bool("IsOutOfDate")?,
            has_been_processed: el.child_bool("HasBeenProcessed")?,
            response_type: opt_enum(el, "ResponseType"),
            uid: el.child_text("UID").map(str::to_owned),
            recurrence_id: el.child_datetime("RecurrenceId")?,
            date_time_stamp: el.child_datetime("DateTimeStamp")?,
            meeting_request_type: opt_enum(el, "MeetingRequestType"),
            intended_free_busy_status: opt_enum(el, "IntendedFreeBusyStatus"),
            start: el.child_datetime("Start")?,
            end: el.child_datetime("End")?,
            original_start: el.child_datetime("OriginalStart")?,
            is_all_day_event: el.child_bool("IsAllDayEvent")?,
            legacy_free_busy_status: opt_enum(el, "LegacyFreeBusyStatus"),
            location: el.child_text("Location").map(str::to_owned),
            is_meeting: el.child_bool("IsMeeting")?,
            is_cancelled: el.child_bool("IsCancelled")?,
            is_recurring: el.child_bool("IsRecurring")?,
            meeting_request_was_sent: el.child_bool("MeetingRequestWasSent")?,
            calendar_item_type: opt_enum(el, "CalendarItemType"),
            my_response_type: opt_enum(el, "MyResponseType"),
            organizer: mbox("Organizer")?,
            required_attendees: Attendee::read_list(el, "RequiredAttendees")?,
            optional_attendees: Attendee::read_list(el, "OptionalAttendees")?,
            resources: Attendee::read_list(el, "Resources")?,
            appointment_sequence_number: el.child_parse("AppointmentSequenceNumber")?,
            appointment_state: el.child_parse("AppointmentState")?,
            recurrence: el.child("Recurrence").map(Recurrence::read).transpose()?,
            first_occurrence: el.child("FirstOccurrence").map(OccurrenceInfo::read).transpose()?,
            last_occurrence: el.child("LastOccurrence").map(OccurrenceInfo::read).transpose()?,
            modified_occurrences: occurrences("ModifiedOccurrences")?,
            deleted_occurrences,
            meeting_time_zone: el.child("MeetingTimeZone").map(MeetingTimeZone::read).transpose()?,
            start_time_zone: el.child("StartTimeZone").map(TimeZoneDefinition::read).transpose()?,
            end_time_zone: el.child("EndTimeZone").map(TimeZoneDefinition::read).transpose()?,
            proposed_start: el.child_datetime("ProposedStart")?,
            proposed_end: el.child_datetime("ProposedEnd")?,
        })
    }
}

/// Reads every item element among `parent`'s children, skipping others.
pub fn read_items(parent: &Element) -> Result<Vec<Item>, EwsError> {
    parent
        .children
        .iter()
        .filter(|c| ItemKind::from_element_name(&c.name).is_some())
        .map(Item::read)
        .collect()
}

wire_enum!(
    /// `t:DefaultShapeNamesType`.
    BaseShape {
        IdOnly = "IdOnly",
        Default = "Default",
        AllProperties = "AllProperties",
    }
);

/// `t:FieldURI/@FieldURI`, such as `item:Subject` or `calendar:UID`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldUri(pub String);

impl FieldUri {
    pub fn new(s: &str) -> Self {
        FieldUri(s.to_owned())
    }
}

/// One entry of AdditionalProperties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyPath {
    Field(FieldUri),
    Extended(ExtendedFieldUri),
}

impl PropertyPath {
    pub fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        match self {
            PropertyPath::Field(f) => w.empty("t:FieldURI", &[("FieldURI", &f.0)]),
            PropertyPath::Extended(e) => e.write(w),
        }
    }

    pub fn read(el: &Element) -> Result<Option<Self>, EwsError> {
        Ok(match el.name.as_str() {
            "FieldURI" => Some(PropertyPath::Field(FieldUri(el.req_attr("FieldURI")?.to_owned()))),
            "ExtendedFieldURI" => Some(PropertyPath::Extended(ExtendedFieldUri::read(el)?)),
            _ => None,
        })
    }
}

/// `m:ItemShape` / `m:FolderShape`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub base_shape: BaseShape,
    /// ItemShape only: the body format to return.
    pub body_type: Option<super::types::BodyType>,
    pub additional_properties: Vec<PropertyPath>,
}

impl Shape {
    pub fn new(base_shape: BaseShape) -> Self {
        Self {
            base_shape,
            body_type: None,
            additional_properties: Vec::new(),
        }
    }

    /// The shape resa uses to read meeting messages and calendar items:
    /// everything, the body as text, and both global object ids.
    pub fn meeting() -> Self {
        Self {
            base_shape: BaseShape::AllProperties,
            body_type: Some(super::types::BodyType::Text),
            additional_properties: vec![
                PropertyPath::Extended(ExtendedFieldUri::global_object_id()),
                PropertyPath::Extended(ExtendedFieldUri::clean_global_object_id()),
            ],
        }
    }

    pub fn write_as(&self, w: &mut XmlWriter, name: &str) -> Result<(), EwsError> {
        w.start(name, &[])?;
        w.text_elem("t:BaseShape", self.base_shape.as_str())?;
        w.opt_text("t:BodyType", self.body_type.as_ref())?;
        if !self.additional_properties.is_empty() {
            w.start("t:AdditionalProperties", &[])?;
            for p in &self.additional_properties {
                p.write(w)?;
            }
            w.end("t:AdditionalProperties")?;
        }
        w.end(name)
    }

    pub fn read(el: &Element) -> Result<Self, EwsError> {
        let mut additional_properties = Vec::new();
        if let Some(list) = el.child("AdditionalProperties") {
            for c in &list.children {
                if let Some(p) = PropertyPath::read(c)? {
                    additional_properties.push(p);
                }
            }
        }
        Ok(Self {
            base_shape: el.req_child("BaseShape")?.text().parse()?,
            body_type: opt_enum(el, "BodyType"),
            additional_properties,
        })
    }
}
