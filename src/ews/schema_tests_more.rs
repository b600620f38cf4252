//! Schema fixtures of the later operations (see `schema_tests`).

use chrono::{TimeZone, Utc};

use super::item::{FieldUri, Item, ItemKind, PropertyPath};
use super::ops::create_item::{CreateItem, MessageDisposition, SendMeetingInvitations};
use super::ops::delete_item::{DeleteItem, DeleteItemResponse, DeleteType};
use super::ops::get_item::{ItemRef, Items};
use super::ops::update_item::{
    ConflictResolution, ItemChange, SendInvitationsOrCancellations, Update, UpdateItem, UpdateItemResponse,
    UpdateItemResult,
};
use super::soap::{ResponseMessage, ResponseMessages, ServerVersion, write_payload};
use super::types::{Body, ItemId, Mailbox};
use super::voting::voting_property;
use super::xml::Wire;

type Docs = Vec<(String, Vec<u8>)>;

fn push<T: Wire>(out: &mut Docs, label: &str, v: ServerVersion, value: &T) {
    match write_payload(value, v) {
        Ok(b) => out.push((label.to_owned(), b)),
        Err(e) => panic!("{label} on {v}: {e}"),
    }
}

pub(crate) fn approval_message() -> Item {
    Item {
        kind: ItemKind::Message,
        subject: Some("Demande: Salle Cézanne lundi 9 h".into()),
        body: Some(Body::text("Répondez avec les boutons de vote.")),
        extended_properties: vec![voting_property(&["Approuver", "Refuser"])],
        from: Some(Mailbox::smtp("salle.cezanne@x.fr")),
        to_recipients: vec![Mailbox::smtp("chef@x.fr")],
        ..Item::default()
    }
}

pub(crate) fn requests(v: ServerVersion) -> Docs {
    let mut out = Docs::new();
    push(
        &mut out,
        "CreateItem Message",
        v,
        &CreateItem::send_message(approval_message()),
    );
    let moved = Item {
        kind: ItemKind::CalendarItem,
        start: Some(Utc.with_ymd_and_hms(2026, 4, 1, 8, 0, 0).single().unwrap_or_default()),
        ..Item::default()
    };
    push(
        &mut out,
        "UpdateItem",
        v,
        &UpdateItem {
            conflict_resolution: ConflictResolution::AutoResolve,
            message_disposition: Some(MessageDisposition::SaveOnly),
            send_meeting_invitations_or_cancellations: Some(SendInvitationsOrCancellations::SendToChangedAndSaveCopy),
            item_changes: vec![ItemChange {
                item: ItemRef::Id(ItemId {
                    id: "AAMk=".into(),
                    change_key: Some("CK".into()),
                }),
                updates: vec![
                    Update::Set {
                        path: PropertyPath::Field(FieldUri::new("calendar:Start")),
                        item: moved,
                    },
                    Update::Delete {
                        path: PropertyPath::Field(FieldUri::new("item:Categories")),
                    },
                ],
            }],
        },
    );
    push(
        &mut out,
        "DeleteItem",
        v,
        &DeleteItem {
            delete_type: DeleteType::MoveToDeletedItems,
            send_meeting_cancellations: Some(SendMeetingInvitations::SendToAllAndSaveCopy),
            item_ids: vec![ItemRef::Id(ItemId::new("AAMk="))],
        },
    );
    out.extend(super::ops::schema_fixtures::requests(v));
    out
}

pub(crate) fn responses(v: ServerVersion) -> Docs {
    let mut out = Docs::new();
    push(
        &mut out,
        "UpdateItemResponse",
        v,
        &UpdateItemResponse(ResponseMessages {
            messages: vec![
                ResponseMessage::success(UpdateItemResult {
                    items: Items {
                        items: vec![Item {
                            kind: ItemKind::CalendarItem,
                            item_id: Some(ItemId::new("AAMk=")),
                            ..Item::default()
                        }],
                    },
                    conflict_count: 0,
                }),
                ResponseMessage::error(super::error::ResponseCode::ErrorIrresolvableConflict, "conflict"),
            ],
        }),
    );
    push(
        &mut out,
        "DeleteItemResponse",
        v,
        &DeleteItemResponse(ResponseMessages {
            messages: vec![ResponseMessage::success(())],
        }),
    );
    out.extend(super::ops::schema_fixtures::responses(v));
    out
}
