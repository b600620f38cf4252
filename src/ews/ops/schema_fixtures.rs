//! Schema fixtures of the notification and directory operations.

use chrono::{TimeZone, Utc};

use crate::ews::error::ResponseCode;
use crate::ews::item::LegacyFreeBusyStatus;
use crate::ews::ops::get_events::{GetEvents, GetEventsResponse, GetEventsResult};
use crate::ews::ops::get_streaming_events::{
    ConnectionStatus, GetStreamingEvents, GetStreamingEventsResponse, StreamingEvents,
};
use crate::ews::ops::get_user_availability::{
    CalendarEvent, FreeBusyResponse, FreeBusyViewType, GetUserAvailability, GetUserAvailabilityResponse, MailboxData,
    MeetingAttendeeType,
};
use crate::ews::ops::notification::{Event, EventTarget, EventType, Notification};
use crate::ews::ops::resolve_names::{Resolution, ResolutionSet, ResolveNames, ResolveNamesResponse};
use crate::ews::ops::rooms::{GetRoomLists, GetRoomListsResponse, GetRooms, GetRoomsResponse};
use crate::ews::ops::subscribe::{Subscribe, SubscribeResponse, Subscription, SubscriptionKind};
use crate::ews::ops::unsubscribe::{Unsubscribe, UnsubscribeResponse};
use crate::ews::soap::{ResponseMessage, ResponseMessages, ServerVersion, write_payload};
use crate::ews::types::{DistinguishedFolder, FolderRef, ItemId, Mailbox};
use crate::ews::xml::Wire;

type Docs = Vec<(String, Vec<u8>)>;

fn push<T: Wire>(out: &mut Docs, label: &str, v: ServerVersion, value: &T) {
    match write_payload(value, v) {
        Ok(b) => out.push((label.to_owned(), b)),
        Err(e) => panic!("{label} on {v}: {e}"),
    }
}

fn t(h: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 30, h, 0, 0).single().unwrap_or_default()
}

pub(crate) fn subscribe(kind: SubscriptionKind) -> Subscribe {
    Subscribe {
        kind,
        folder_ids: vec![
            FolderRef::distinguished(DistinguishedFolder::Inbox),
            FolderRef::Distinguished {
                id: DistinguishedFolder::Calendar,
                mailbox: Some("salle@x.fr".into()),
            },
        ],
        event_types: EventType::ALL.to_vec(),
        watermark: Some("AAAAAMAGAAAAAAAAAQ==".into()),
    }
}

pub(crate) fn requests(v: ServerVersion) -> Docs {
    let mut out = Docs::new();
    push(
        &mut out,
        "Subscribe pull",
        v,
        &subscribe(SubscriptionKind::Pull { timeout_minutes: 30 }),
    );
    push(
        &mut out,
        "Subscribe push",
        v,
        &subscribe(SubscriptionKind::Push {
            status_frequency_minutes: 5,
            url: "https://resa.example/ews/push".into(),
        }),
    );
    push(
        &mut out,
        "GetEvents",
        v,
        &GetEvents {
            subscription_id: "sub".into(),
            watermark: "wm".into(),
        },
    );
    push(
        &mut out,
        "Unsubscribe",
        v,
        &Unsubscribe {
            subscription_id: "sub".into(),
        },
    );
    push(
        &mut out,
        "ResolveNames",
        v,
        &ResolveNames {
            unresolved_entry: "/O=EXAMPLE/OU=EXCHANGE ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=AGENT".into(),
        },
    );
    push(
        &mut out,
        "GetUserAvailability",
        v,
        &GetUserAvailability {
            mailboxes: vec![MailboxData {
                address: "salle@x.fr".into(),
                attendee_type: MeetingAttendeeType::Room,
            }],
            start: t(0),
            end: t(23),
            merged_interval_minutes: Some(30),
            requested_view: FreeBusyViewType::FreeBusy,
        },
    );
    if v.has_streaming() {
        push(
            &mut out,
            "Subscribe streaming",
            v,
            &subscribe(SubscriptionKind::Streaming),
        );
        push(
            &mut out,
            "GetStreamingEvents",
            v,
            &GetStreamingEvents {
                subscription_ids: vec!["a".into(), "b".into()],
                connection_timeout_minutes: 30,
            },
        );
        push(&mut out, "GetRoomLists", v, &GetRoomLists);
        push(
            &mut out,
            "GetRooms",
            v,
            &GetRooms {
                room_list: "batiment1@x.fr".into(),
            },
        );
    } else {
        // The builders refuse what 2007 cannot express.
        assert!(write_payload(&subscribe(SubscriptionKind::Streaming), v).is_err());
        let g = GetStreamingEvents {
            subscription_ids: vec!["a".into()],
            connection_timeout_minutes: 30,
        };
        assert!(write_payload(&g, v).is_err());
        assert!(write_payload(&GetRoomLists, v).is_err());
    }
    out
}

fn notification() -> Notification {
    let id = ItemId {
        id: "AAMkI=".into(),
        change_key: Some("CQ".into()),
    };
    let parent = ItemId::new("AAMkF=");
    Notification {
        subscription_id: "sub".into(),
        previous_watermark: Some("wm0".into()),
        more_events: Some(false),
        events: vec![
            Event::status("wm1"),
            Event {
                kind: EventType::NewMail,
                watermark: Some("wm2".into()),
                time_stamp: Some(t(8)),
                target: Some(EventTarget::Item(id.clone())),
                parent_folder_id: Some(parent.clone()),
                old_target: None,
                old_parent_folder_id: None,
                unread_count: None,
            },
            Event {
                kind: EventType::Moved,
                watermark: Some("wm3".into()),
                time_stamp: Some(t(8)),
                target: Some(EventTarget::Item(id.clone())),
                parent_folder_id: Some(parent.clone()),
                old_target: Some(EventTarget::Item(id)),
                old_parent_folder_id: Some(parent.clone()),
                unread_count: None,
            },
            Event {
                kind: EventType::Modified,
                watermark: Some("wm4".into()),
                time_stamp: Some(t(8)),
                target: Some(EventTarget::Folder(parent.clone())),
                parent_folder_id: Some(parent),
                old_target: None,
                old_parent_folder_id: None,
                unread_count: Some(1),
            },
        ],
    }
}

pub(crate) fn responses(v: ServerVersion) -> Docs {
    let mut out = Docs::new();
    push(
        &mut out,
        "SubscribeResponse",
        v,
        &SubscribeResponse(ResponseMessages {
            messages: vec![ResponseMessage::success(Subscription {
                subscription_id: "sub".into(),
                watermark: Some("wm".into()),
            })],
        }),
    );
    push(
        &mut out,
        "GetEventsResponse",
        v,
        &GetEventsResponse(ResponseMessages {
            messages: vec![ResponseMessage::success(GetEventsResult {
                notification: notification(),
            })],
        }),
    );
    push(
        &mut out,
        "UnsubscribeResponse",
        v,
        &UnsubscribeResponse(ResponseMessages {
            messages: vec![ResponseMessage::error(ResponseCode::ErrorSubscriptionNotFound, "gone")],
        }),
    );
    push(
        &mut out,
        "ResolveNamesResponse",
        v,
        &ResolveNamesResponse(ResponseMessages {
            messages: vec![ResponseMessage::success(ResolutionSet {
                includes_last_item_in_range: true,
                resolutions: vec![Resolution {
                    mailbox: Mailbox::smtp("agent@x.fr"),
                    display_name: Some("Agent".into()),
                }],
            })],
        }),
    );
    push(
        &mut out,
        "GetUserAvailabilityResponse",
        v,
        &GetUserAvailabilityResponse {
            responses: vec![FreeBusyResponse {
                status: ResponseMessage::success(()),
                view_type: Some("FreeBusy".into()),
                events: vec![CalendarEvent {
                    start: t(8),
                    end: t(9),
                    busy_type: LegacyFreeBusyStatus::Busy,
                }],
            }],
        },
    );
    if v.has_streaming() {
        let mut n = notification();
        n.previous_watermark = None;
        n.more_events = None;
        push(
            &mut out,
            "GetStreamingEventsResponse",
            v,
            &GetStreamingEventsResponse(ResponseMessages {
                messages: vec![ResponseMessage::success(StreamingEvents {
                    notifications: vec![n],
                    error_subscription_ids: vec!["expired".into()],
                    connection_status: Some(ConnectionStatus::Ok),
                })],
            }),
        );
        push(
            &mut out,
            "GetRoomListsResponse",
            v,
            &GetRoomListsResponse {
                status: ResponseMessage::success(()),
                room_lists: vec![Mailbox::smtp("batiment1@x.fr")],
            },
        );
        push(
            &mut out,
            "GetRoomsResponse",
            v,
            &GetRoomsResponse {
                status: ResponseMessage::success(()),
                rooms: vec![Mailbox::smtp("salle@x.fr")],
            },
        );
    }
    out
}
