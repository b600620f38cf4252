//! GetUserAvailability: free/busy of mailboxes over a window. resa always
//! asks in UTC (a zero-bias SerializableTimeZone), so the local times the
//! server answers with are UTC times.

use chrono::{NaiveDateTime, TimeZone as _, Utc};

use crate::ews::error::EwsError;
use crate::ews::item::LegacyFreeBusyStatus;
use crate::ews::soap::{Operation, ResponseMessage};
use crate::ews::types::{opt_enum, wire_enum};
use crate::ews::xml::{Element, Wire, XmlWriter};

wire_enum!(
    /// `t:MeetingAttendeeType`.
    MeetingAttendeeType {
        Organizer = "Organizer",
        Required = "Required",
        Optional = "Optional",
        Room = "Room",
        Resource = "Resource",
    }
);

wire_enum!(
    /// `t:FreeBusyViewType` values resa asks for.
    FreeBusyViewType {
        FreeBusy = "FreeBusy",
        FreeBusyMerged = "FreeBusyMerged",
        Detailed = "Detailed",
        DetailedMerged = "DetailedMerged",
    }
);

/// One mailbox to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxData {
    pub address: String,
    pub attendee_type: MeetingAttendeeType,
}

/// The request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetUserAvailability {
    pub mailboxes: Vec<MailboxData>,
    pub start: chrono::DateTime<Utc>,
    pub end: chrono::DateTime<Utc>,
    pub merged_interval_minutes: Option<u32>,
    pub requested_view: FreeBusyViewType,
}

impl Operation for GetUserAvailability {
    type Response = GetUserAvailabilityResponse;
    const NAME: &'static str = "GetUserAvailabilityRequest";
}

fn fmt_local(t: &chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn write_utc_zone_time(w: &mut XmlWriter, name: &str) -> Result<(), EwsError> {
    w.start(name, &[])?;
    w.text_elem("t:Bias", "0")?;
    w.text_elem("t:Time", "00:00:00")?;
    w.text_elem("t:DayOrder", "1")?;
    w.text_elem("t:Month", "1")?;
    w.text_elem("t:DayOfWeek", "Sunday")?;
    w.end(name)
}

impl Wire for GetUserAvailability {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        w.start_payload("m:GetUserAvailabilityRequest", &[])?;
        w.start("t:TimeZone", &[])?;
        w.text_elem("t:Bias", "0")?;
        write_utc_zone_time(w, "t:StandardTime")?;
        write_utc_zone_time(w, "t:DaylightTime")?;
        w.end("t:TimeZone")?;
        w.start("m:MailboxDataArray", &[])?;
        for m in &self.mailboxes {
            w.start("t:MailboxData", &[])?;
            w.start("t:Email", &[])?;
            w.text_elem("t:Address", &m.address)?;
            w.end("t:Email")?;
            w.text_elem("t:AttendeeType", m.attendee_type.as_str())?;
            w.text_elem("t:ExcludeConflicts", "false")?;
            w.end("t:MailboxData")?;
        }
        w.end("m:MailboxDataArray")?;
        w.start("t:FreeBusyViewOptions", &[])?;
        w.start("t:TimeWindow", &[])?;
        w.text_elem("t:StartTime", &fmt_local(&self.start))?;
        w.text_elem("t:EndTime", &fmt_local(&self.end))?;
        w.end("t:TimeWindow")?;
        w.opt_text(
            "t:MergedFreeBusyIntervalInMinutes",
            self.merged_interval_minutes.as_ref(),
        )?;
        w.text_elem("t:RequestedView", self.requested_view.as_str())?;
        w.end("t:FreeBusyViewOptions")?;
        w.end("m:GetUserAvailabilityRequest")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        let opts = el.req_child("FreeBusyViewOptions")?;
        let window = opts.req_child("TimeWindow")?;
        let time = |n: &str| -> Result<chrono::DateTime<Utc>, EwsError> {
            crate::ews::xml::parse_datetime(window.req_child(n)?.text())
        };
        Ok(Self {
            mailboxes: el
                .req_child("MailboxDataArray")?
                .children_named("MailboxData")
                .map(|m| {
                    Ok(MailboxData {
                        address: m.req_child("Email")?.req_child("Address")?.text().to_owned(),
                        attendee_type: m.req_child("AttendeeType")?.text().parse()?,
                    })
                })
                .collect::<Result<_, EwsError>>()?,
            start: time("StartTime")?,
            end: time("EndTime")?,
            merged_interval_minutes: opts.child_parse("MergedFreeBusyIntervalInMinutes")?,
            requested_view: opts
                .child_text("RequestedView")
                .map(str::parse)
                .transpose()?
                .unwrap_or(FreeBusyViewType::FreeBusy),
        })
    }
}

/// A busy interval, in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEvent {
    pub start: chrono::DateTime<Utc>,
    pub end: chrono::DateTime<Utc>,
    pub busy_type: LegacyFreeBusyStatus,
}

/// One mailbox's answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FreeBusyResponse {
    pub status: ResponseMessage<()>,
    pub view_type: Option<String>,
    pub events: Vec<CalendarEvent>,
}

/// The response: one entry per requested mailbox, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GetUserAvailabilityResponse {
    pub responses: Vec<FreeBusyResponse>,
}

fn parse_local(s: &str) -> Result<chrono::DateTime<Utc>, EwsError> {
    // A zone suffix would be honoured; a bare local time is UTC because
    // the request said so.
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f")
        .map(|n| Utc.from_utc_datetime(&n))
        .map_err(|_| EwsError::malformed(format!("bad local time {s:?}")))
}

impl crate::ews::soap::ResponseStatus for GetUserAvailabilityResponse {}

impl Wire for GetUserAvailabilityResponse {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        w.start_payload("m:GetUserAvailabilityResponse", &[])?;
        w.start("m:FreeBusyResponseArray", &[])?;
        for r in &self.responses {
            w.start("m:FreeBusyResponse", &[])?;
            r.status.write(w, "m:ResponseMessage")?;
            w.start("m:FreeBusyView", &[])?;
            w.text_elem("t:FreeBusyViewType", r.view_type.as_deref().unwrap_or("FreeBusy"))?;
            w.start("t:CalendarEventArray", &[])?;
            for e in &r.events {
                w.start("t:CalendarEvent", &[])?;
                w.text_elem("t:StartTime", &fmt_local(&e.start))?;
                w.text_elem("t:EndTime", &fmt_local(&e.end))?;
                w.text_elem("t:BusyType", e.busy_type.as_str())?;
                w.end("t:CalendarEvent")?;
            }
            w.end("t:CalendarEventArray")?;
            w.end("m:FreeBusyView")?;
            w.end("m:FreeBusyResponse")?;
        }
        w.end("m:FreeBusyResponseArray")?;
        w.end("m:GetUserAvailabilityResponse")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        let mut responses = Vec::new();
        if let Some(array) = el.child("FreeBusyResponseArray") {
            for r in array.children_named("FreeBusyResponse") {
                let status = match r.child("ResponseMessage") {
                    Some(m) => ResponseMessage::read(m)?,
                    None => ResponseMessage::success(()),
                };
                let view = r.child("FreeBusyView");
                let mut events = Vec::new();
                if let Some(arr) = view.and_then(|v| v.child("CalendarEventArray")) {
                    for e in arr.children_named("CalendarEvent") {
                        let Some(busy_type) = opt_enum(e, "BusyType") else {
                            continue;
                        };
                        events.push(CalendarEvent {
                            start: parse_local(e.req_child("StartTime")?.text())?,
                            end: parse_local(e.req_child("EndTime")?.text())?,
                            busy_type,
                        });
                    }
                }
                responses.push(FreeBusyResponse {
                    status,
                    view_type: view.and_then(|v| v.child_text("FreeBusyViewType")).map(str::to_owned),
                    events,
                });
            }
        }
        Ok(Self { responses })
    }
}
