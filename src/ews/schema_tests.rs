//! Every request builder, for every version, checked against that version's
//! official schema (`RESA_EWS_SCHEMAS`), the way the shared samples were
//! checked: the SOAP Body's first child, standalone, against messages.xsd.
//! Responses written for a simulator are checked the same way, and every
//! payload must read back into the value that wrote it.

use chrono::{NaiveDate, TimeZone, Utc};

use super::error::ResponseCode;
use super::item::{BaseShape, CalendarItemType, Item, ItemKind, LegacyFreeBusyStatus, MeetingRequestType, Shape};
use super::ops::create_item::{CreateItem, ResponseObjectKind};
use super::ops::find_item::{CalendarView, FindItem, FindItemResponse, FindItemResult};
use super::ops::get_folder::{Folder, Folders, GetFolder, GetFolderResponse};
use super::ops::get_item::{GetItem, GetItemResponse, ItemRef, Items};
use super::ops::sync_folder_items::{Change, SyncFolderItems, SyncFolderItemsResponse, SyncFolderItemsResult};
use super::soap::{Impersonation, RequestHeader, ResponseMessage, ResponseMessages, ServerVersion, write_payload};
use super::testkit::validate;
use super::types::*;
use super::xml::{self, Wire, XmlWriter};

fn t(h: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 30, h, 0, 0).single().unwrap_or_default()
}

fn d(m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, day).unwrap_or_default()
}

fn attendee(a: &str) -> Attendee {
    Attendee {
        mailbox: Mailbox {
            name: Some(a.to_uppercase()),
            ..Mailbox::smtp(a)
        },
        response_type: Some(ResponseType::Accept),
        last_response_time: Some(t(7)),
    }
}

/// A calendar item with every property resa writes.
pub(crate) fn rich_calendar_item(pattern: RecurrencePattern, range: RecurrenceRange) -> Item {
    Item {
        kind: ItemKind::CalendarItem,
        item_id: Some(ItemId {
            id: "AAMkCal=".into(),
            change_key: Some("DwAAA".into()),
        }),
        subject: Some("Comité <budget> & co".into()),
        body: Some(Body::text("Ordre du jour\n1. budget")),
        reminder_is_set: Some(false),
        extended_properties: vec![
            ExtendedProperty::binary(ExtendedFieldUri::global_object_id(), &[4, 0, 0, 0x82, 0]),
            ExtendedProperty::binary(ExtendedFieldUri::clean_global_object_id(), &[4, 0, 0, 0x82, 1]),
        ],
        uid: Some("040000008200E00074C5B7101A82E008".into()),
        start: Some(t(8)),
        end: Some(t(9)),
        is_all_day_event: Some(false),
        legacy_free_busy_status: Some(LegacyFreeBusyStatus::Busy),
        location: Some("Salle Cézanne".into()),
        is_meeting: Some(true),
        is_cancelled: Some(false),
        is_recurring: Some(true),
        is_response_requested: Some(true),
        calendar_item_type: Some(CalendarItemType::RecurringMaster),
        my_response_type: Some(ResponseType::Organizer),
        organizer: Some(Mailbox {
            name: Some("Agent".into()),
            email_address: Some("/O=EXAMPLE/OU=EXCHANGE ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=AGENT".into()),
            routing_type: Some(RoutingType::Ex),
            mailbox_type: Some(MailboxType::Mailbox),
        }),
        required_attendees: vec![attendee("a@x.fr"), attendee("b@x.fr")],
        optional_attendees: vec![attendee("c@x.fr")],
        resources: vec![attendee("salle.cezanne@x.fr")],
        appointment_sequence_number: Some(2),
        appointment_state: Some(3),
        recurrence: Some(Recurrence { pattern, range }),
        first_occurrence: Some(OccurrenceInfo {
            item_id: ItemId::new("AAMkOcc1="),
            start: t(8),
            end: t(9),
            original_start: t(8),
        }),
        last_occurrence: Some(OccurrenceInfo {
            item_id: ItemId::new("AAMkOcc9="),
            start: t(8),
            end: t(9),
            original_start: t(8),
        }),
        modified_occurrences: vec![OccurrenceInfo {
            item_id: ItemId::new("AAMkOcc2="),
            start: t(10),
            end: t(11),
            original_start: t(8),
        }],
        deleted_occurrences: vec![t(8)],
        meeting_time_zone: Some(MeetingTimeZone {
            time_zone_name: Some("Romance Standard Time".into()),
            base_offset: Some(XsDuration(chrono::TimeDelta::hours(-1))),
            standard: Some(TimeChange {
                time_zone_name: None,
                offset: XsDuration(chrono::TimeDelta::zero()),
                relative_yearly: Some((DayOfWeek::Sunday, DayOfWeekIndex::Last, Month::October)),
                absolute_date: None,
                time: "03:00:00".into(),
            }),
            daylight: Some(TimeChange {
                time_zone_name: None,
                offset: XsDuration(chrono::TimeDelta::hours(-1)),
                relative_yearly: Some((DayOfWeek::Sunday, DayOfWeekIndex::Last, Month::March)),
                absolute_date: None,
                time: "02:00:00".into(),
            }),
        }),
        start_time_zone: Some(TimeZoneDefinition::new("Romance Standard Time")),
        end_time_zone: Some(TimeZoneDefinition::new("Romance Standard Time")),
        ..Item::default()
    }
}

fn patterns() -> Vec<RecurrencePattern> {
    vec![
        RecurrencePattern::Daily { interval: 1 },
        RecurrencePattern::Weekly {
            interval: 2,
            days_of_week: vec![DayOfWeek::Monday, DayOfWeek::Thursday],
            first_day_of_week: Some(DayOfWeek::Monday),
        },
        RecurrencePattern::AbsoluteMonthly {
            interval: 1,
            day_of_month: 15,
        },
        RecurrencePattern::RelativeMonthly {
            interval: 1,
            days_of_week: DayOfWeek::Weekday,
            day_of_week_index: DayOfWeekIndex::Last,
        },
        RecurrencePattern::AbsoluteYearly {
            day_of_month: 14,
            month: Month::July,
        },
        RecurrencePattern::RelativeYearly {
            days_of_week: DayOfWeek::Tuesday,
            day_of_week_index: DayOfWeekIndex::First,
            month: Month::September,
        },
    ]
}

fn ranges() -> Vec<RecurrenceRange> {
    vec![
        RecurrenceRange::NoEnd { start: d(3, 30) },
        RecurrenceRange::EndDate {
            start: d(3, 30),
            end: d(12, 31),
        },
        RecurrenceRange::Numbered {
            start: d(3, 30),
            count: 10,
        },
    ]
}

fn meeting_request() -> Item {
    let base = rich_calendar_item(patterns()[1].clone(), ranges()[0].clone());
    Item {
        kind: ItemKind::MeetingRequest,
        item_class: Some("IPM.Schedule.Meeting.Request".into()),
        sender: base.organizer.clone(),
        to_recipients: vec![Mailbox::smtp("salle.cezanne@x.fr")],
        from: base.organizer.clone(),
        internet_message_id: Some("<abc@x.fr>".into()),
        is_read: Some(false),
        associated_calendar_item_id: Some(ItemId::new("AAMkAssoc=")),
        is_delegated: Some(false),
        is_out_of_date: Some(false),
        has_been_processed: Some(true),
        response_type: Some(ResponseType::NoResponseReceived),
        meeting_request_type: Some(MeetingRequestType::NewMeetingRequest),
        intended_free_busy_status: Some(LegacyFreeBusyStatus::Busy),
        my_response_type: Some(ResponseType::NoResponseReceived),
        ..base
    }
}

/// Only the properties a MeetingCancellationMessageType can hold.
fn meeting_cancellation() -> Item {
    let req = meeting_request();
    Item {
        kind: ItemKind::MeetingCancellation,
        item_id: req.item_id,
        item_class: Some("IPM.Schedule.Meeting.Canceled".into()),
        subject: Some("Annulé: comité".into()),
        extended_properties: req.extended_properties,
        sender: req.sender,
        to_recipients: req.to_recipients,
        from: req.from,
        is_read: Some(false),
        associated_calendar_item_id: req.associated_calendar_item_id,
        uid: req.uid,
        start: req.start,
        end: req.end,
        location: req.location,
        recurrence: req.recurrence,
        calendar_item_type: req.calendar_item_type,
        ..Item::default()
    }
}

/// Only the properties a MeetingResponseMessageType can hold.
fn meeting_response() -> Item {
    Item {
        kind: ItemKind::MeetingResponse,
        item_class: Some("IPM.Schedule.Meeting.Resp.Pos".into()),
        response_type: Some(ResponseType::Accept),
        proposed_start: Some(t(10)),
        proposed_end: Some(t(11)),
        ..meeting_cancellation()
    }
}

/// Every request resa builds, labelled.
pub(crate) fn requests(v: ServerVersion) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut push = |label: &str, r: Result<Vec<u8>, super::EwsError>| match r {
        Ok(b) => out.push((label.to_owned(), b)),
        Err(e) => panic!("{label} on {v}: {e}"),
    };
    for (state, folder) in [
        (None, FolderRef::distinguished(DistinguishedFolder::Inbox)),
        (
            Some("H4sIAAAAAAAEAO29B2AcSZYlJi9tynt/".to_owned()),
            FolderRef::Distinguished {
                id: DistinguishedFolder::Calendar,
                mailbox: Some("salle@x.fr".into()),
            },
        ),
        (Some("state".into()), FolderRef::Id(ItemId::new("AAMkF="))),
    ] {
        push(
            "SyncFolderItems",
            write_payload(
                &SyncFolderItems {
                    item_shape: Shape::new(BaseShape::IdOnly),
                    folder,
                    sync_state: state,
                    ignore: vec![ItemId::new("AAMkIgn=")],
                    max_changes_returned: 512,
                },
                v,
            ),
        );
    }
    push(
        "SyncFolderItems::ids",
        write_payload(
            &SyncFolderItems::ids(FolderRef::distinguished(DistinguishedFolder::Inbox), None),
            v,
        ),
    );
    push(
        "GetItem::meetings",
        write_payload(&GetItem::meetings([ItemId::new("AAMk=")]), v),
    );
    push(
        "GetItem",
        write_payload(
            &GetItem {
                item_shape: Shape::meeting(),
                item_ids: vec![
                    ItemRef::Id(ItemId {
                        id: "AAMk=".into(),
                        change_key: Some("CQAA".into()),
                    }),
                    ItemRef::Occurrence {
                        recurring_master_id: "AAMkM=".into(),
                        instance_index: 3,
                    },
                    ItemRef::RecurringMaster {
                        occurrence_id: "AAMkO=".into(),
                    },
                ],
            },
            v,
        ),
    );
    for kind in ResponseObjectKind::ALL {
        let mut c = CreateItem::respond(*kind, ItemId::new("AAMkReq="), Some("Réservé: règle <A&B>"));
        if let Some(super::ops::create_item::NewItem::Response(r)) = c.items.first_mut() {
            r.proposed_start = Some(t(10));
            r.proposed_end = Some(t(11));
            r.new_body_content = Some(Body::text("Annulé"));
            r.subject = Some("Annulé".into());
        }
        push(kind.as_str(), write_payload(&c, v));
    }
    for p in patterns() {
        for r in ranges() {
            let mut item = rich_calendar_item(p.clone(), r);
            item.item_id = None;
            push(
                "CreateItem CalendarItem",
                write_payload(
                    &CreateItem::meeting(item, Some(FolderRef::distinguished(DistinguishedFolder::Calendar))),
                    v,
                ),
            );
        }
    }
    for tz in [chrono_tz::Australia::Sydney, chrono_tz::Asia::Tokyo] {
        let mut item = rich_calendar_item(patterns()[0].clone(), ranges()[0].clone());
        item.item_id = None;
        item.meeting_time_zone = Some(MeetingTimeZone::from_iana(tz, 2026));
        push(
            "CreateItem CalendarItem 2007 zone",
            write_payload(&CreateItem::meeting(item, None), v),
        );
    }
    push(
        "FindItem CalendarView",
        write_payload(
            &FindItem {
                item_shape: Shape::new(BaseShape::Default),
                calendar_view: CalendarView {
                    start: t(0),
                    end: t(23),
                    max_entries_returned: Some(1000),
                },
                parent_folder_ids: vec![FolderRef::Distinguished {
                    id: DistinguishedFolder::Calendar,
                    mailbox: Some("salle@x.fr".into()),
                }],
            },
            v,
        ),
    );
    push(
        "GetFolder",
        write_payload(
            &GetFolder {
                folder_shape: Shape::new(BaseShape::AllProperties),
                folder_ids: vec![
                    FolderRef::distinguished(DistinguishedFolder::Inbox),
                    FolderRef::distinguished(DistinguishedFolder::Calendar),
                ],
            },
            v,
        ),
    );
    out.extend(more_requests(v));
    out
}

/// Requests of the later operations (kept apart so the list above stays readable).
fn more_requests(v: ServerVersion) -> Vec<(String, Vec<u8>)> {
    super::schema_tests_more::requests(v)
}

/// Every response payload a simulator would write.
fn responses(v: ServerVersion) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut push = |label: &str, r: Result<Vec<u8>, super::EwsError>| match r {
        Ok(b) => out.push((label.to_owned(), b)),
        Err(e) => panic!("{label} on {v}: {e}"),
    };
    let cal = rich_calendar_item(patterns()[3].clone(), ranges()[2].clone());
    push(
        "GetItemResponse",
        write_payload(
            &GetItemResponse(ResponseMessages {
                messages: vec![
                    ResponseMessage::success(Items {
                        items: vec![
                            cal.clone(),
                            meeting_request(),
                            meeting_cancellation(),
                            meeting_response(),
                        ],
                    }),
                    ResponseMessage::error(ResponseCode::ErrorItemNotFound, "gone"),
                ],
            }),
            v,
        ),
    );
    push(
        "SyncFolderItemsResponse",
        write_payload(
            &SyncFolderItemsResponse(ResponseMessages {
                messages: vec![ResponseMessage::success(SyncFolderItemsResult {
                    sync_state: "H4sI".into(),
                    includes_last_item_in_range: false,
                    changes: vec![
                        Change::Create(meeting_request()),
                        Change::Update(cal.clone()),
                        Change::Delete(ItemId::new("AAMkDel=")),
                        Change::ReadFlagChange {
                            item_id: ItemId::new("AAMkR="),
                            is_read: true,
                        },
                    ],
                })],
            }),
            v,
        ),
    );
    push(
        "FindItemResponse",
        write_payload(
            &FindItemResponse(ResponseMessages {
                messages: vec![ResponseMessage::success(FindItemResult {
                    total_items_in_view: 1,
                    includes_last_item_in_range: true,
                    items: vec![cal],
                })],
            }),
            v,
        ),
    );
    push(
        "GetFolderResponse",
        write_payload(
            &GetFolderResponse(ResponseMessages {
                messages: vec![ResponseMessage::success(Folders {
                    folders: vec![
                        Folder {
                            element: "Folder".into(),
                            folder_id: Some(ItemId::new("AAMkInbox=")),
                            display_name: Some("Boîte de réception".into()),
                            total_count: Some(3),
                            child_folder_count: Some(0),
                            unread_count: Some(1),
                            ..Folder::default()
                        },
                        Folder {
                            element: "CalendarFolder".into(),
                            folder_id: Some(ItemId::new("AAMkCal=")),
                            display_name: Some("Calendrier".into()),
                            ..Folder::default()
                        },
                    ],
                })],
            }),
            v,
        ),
    );
    out.extend(super::schema_tests_more::responses(v));
    out
}

fn report(kind: &str, v: ServerVersion, failures: &[(String, String)]) -> String {
    let mut s = String::new();
    for (label, why) in failures {
        s.push_str(&format!("\n--- {kind} {label} on {v}:\n{why}\n"));
    }
    s
}

#[test]
fn requests_validate_against_each_version_schema() {
    let mut all = String::new();
    for v in ServerVersion::ALL {
        let docs = requests(v);
        assert!(docs.len() > 20);
        all.push_str(&report("request", v, &validate(v, &docs)));
    }
    assert!(all.is_empty(), "schema failures:{all}");
}

#[test]
fn responses_validate_against_each_version_schema() {
    let mut all = String::new();
    for v in ServerVersion::ALL {
        all.push_str(&report("response", v, &validate(v, &responses(v))));
    }
    assert!(all.is_empty(), "schema failures:{all}");
}

#[test]
fn request_headers_validate() {
    for v in ServerVersion::ALL {
        let h = RequestHeader {
            version: v,
            impersonation: Some(Impersonation::PrimarySmtpAddress("salle@x.fr".into())),
            time_zone_context: (v >= ServerVersion::Exchange2010_SP2).then(|| "Romance Standard Time".to_owned()),
        };
        // Each header element is a standalone document for the check.
        let mut docs = Vec::new();
        let mut w = XmlWriter::new(v);
        w.start("h", &[]).ok();
        h.write_elements(&mut w).ok();
        w.end("h").ok();
        let parsed = xml::parse(&w.into_bytes(), 1 << 20).unwrap_or_default();
        assert!(parsed.children.len() >= 2, "{v}");
        for child in &parsed.children {
            let mut w = XmlWriter::new(v);
            let bytes = match child.name.as_str() {
                "RequestServerVersion" => {
                    w.empty(
                        "t:RequestServerVersion",
                        &[("xmlns:t", xml::NS_TYPES), ("Version", v.as_str())],
                    )
                    .ok();
                    w.into_bytes()
                }
                _ => {
                    // Re-serialize through the header writer alone.
                    let single = RequestHeader {
                        version: v,
                        impersonation: (child.name == "ExchangeImpersonation")
                            .then(|| h.impersonation.clone())
                            .flatten(),
                        time_zone_context: (child.name == "TimeZoneContext")
                            .then(|| h.time_zone_context.clone())
                            .flatten(),
                    };
                    let mut w = XmlWriter::new(v);
                    single.write_elements(&mut w).ok();
                    let b = w.into_bytes();
                    // Drop the leading RequestServerVersion element.
                    let s = String::from_utf8_lossy(&b).into_owned();
                    let cut = s.find("/>").map(|i| i + 2).unwrap_or(0);
                    s.as_bytes()[cut..].to_vec()
                }
            };
            docs.push((child.name.clone(), bytes));
        }
        let failures = validate(v, &docs);
        assert!(failures.is_empty(), "{}", report("header", v, &failures));
    }
}

fn round_trip<T: Wire + PartialEq + std::fmt::Debug>(value: &T, v: ServerVersion) {
    let bytes = write_payload(value, v).unwrap_or_default();
    let el = xml::parse(&bytes, 1 << 24).unwrap_or_else(|e| panic!("{e}"));
    let back = T::read(&el).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)));
    assert_eq!(&back, value);
}

#[test]
fn payloads_read_back_into_what_wrote_them() {
    let v = ServerVersion::Exchange2016;
    for p in patterns() {
        for r in ranges() {
            round_trip(&CreateItem::meeting(rich_calendar_item(p.clone(), r), None), v);
        }
    }
    round_trip(
        &GetItemResponse(ResponseMessages {
            messages: vec![ResponseMessage::success(Items {
                items: vec![meeting_request(), meeting_cancellation(), meeting_response()],
            })],
        }),
        v,
    );
    round_trip(
        &CreateItem::respond(ResponseObjectKind::Decline, ItemId::new("X"), Some("non")),
        v,
    );
}

#[test]
fn global_object_ids_decode() {
    let item = meeting_request();
    assert_eq!(item.global_object_id(), Some(vec![4, 0, 0, 0x82, 0]));
    assert_eq!(item.clean_global_object_id(), Some(vec![4, 0, 0, 0x82, 1]));
    assert_eq!(item.time_zone(), Some(chrono_tz::Europe::Paris));
}

#[test]
fn out_of_range_max_changes_is_refused() {
    let req = SyncFolderItems {
        item_shape: Shape::new(BaseShape::IdOnly),
        folder: FolderRef::distinguished(DistinguishedFolder::Inbox),
        sync_state: None,
        ignore: vec![],
        max_changes_returned: 513,
    };
    assert!(write_payload(&req, ServerVersion::Exchange2016).is_err());
}
