//! DeleteItem: removes items; for calendar items resa owns, it can also
//! send the cancellations.

use crate::ews::error::EwsError;
use crate::ews::ops::create_item::SendMeetingInvitations;
use crate::ews::ops::get_item::ItemRef;
use crate::ews::soap::{Operation, response_payload};
use crate::ews::types::wire_enum;
use crate::ews::xml::{Element, Wire, XmlWriter};

wire_enum!(
    /// `DeleteType`.
    DeleteType {
        HardDelete = "HardDelete",
        SoftDelete = "SoftDelete",
        MoveToDeletedItems = "MoveToDeletedItems",
    }
);

/// The request.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteItem {
    pub delete_type: DeleteType,
    /// Required by Exchange for calendar items: whether attendees are told.
    pub send_meeting_cancellations: Option<SendMeetingInvitations>,
    pub item_ids: Vec<ItemRef>,
}

impl Operation for DeleteItem {
    type Response = DeleteItemResponse;
    const NAME: &'static str = "DeleteItem";
    const IDEMPOTENT: bool = false;
}

impl Wire for DeleteItem {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        let mut attrs = vec![("DeleteType", self.delete_type.as_str())];
        if let Some(s) = self.send_meeting_cancellations {
            attrs.push(("SendMeetingCancellations", s.as_str()));
        }
        w.start_payload("m:DeleteItem", &attrs)?;
        w.start("m:ItemIds", &[])?;
        for id in &self.item_ids {
            id.write(w)?;
        }
        w.end("m:ItemIds")?;
        w.end("m:DeleteItem")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            delete_type: el.req_attr("DeleteType")?.parse()?,
            send_meeting_cancellations: el.attr("SendMeetingCancellations").map(str::parse).transpose()?,
            item_ids: ItemRef::read_list(el.req_child("ItemIds")?)?,
        })
    }
}

response_payload!(
    DeleteItemResponse,
    (),
    "m:DeleteItemResponse",
    "m:DeleteItemResponseMessage"
);
