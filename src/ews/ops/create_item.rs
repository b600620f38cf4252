//! CreateItem: new items (calendar items with invitations, messages) and
//! meeting response objects (AcceptItem, TentativelyAcceptItem, DeclineItem,
//! CancelCalendarItem, RemoveItem).

use crate::ews::error::EwsError;
use crate::ews::item::Item;
use crate::ews::ops::get_item::Items;
use crate::ews::soap::{Operation, ServerVersion, response_payload};
use crate::ews::types::{Body, FolderRef, ItemId, Mailbox, read_mailbox_list, wire_enum, write_mailbox_list};
use crate::ews::xml::{Element, Wire, XmlWriter, fmt_datetime};

wire_enum!(
    /// `MessageDisposition`.
    MessageDisposition {
        SaveOnly = "SaveOnly",
        SendOnly = "SendOnly",
        SendAndSaveCopy = "SendAndSaveCopy",
    }
);

wire_enum!(
    /// `SendMeetingInvitations` (CreateItem) and `SendMeetingCancellations` (DeleteItem).
    SendMeetingInvitations {
        SendToNone = "SendToNone",
        SendOnlyToAll = "SendOnlyToAll",
        SendToAllAndSaveCopy = "SendToAllAndSaveCopy",
    }
);

wire_enum!(
    /// Which response object.
    ResponseObjectKind {
        Accept = "AcceptItem",
        TentativelyAccept = "TentativelyAcceptItem",
        Decline = "DeclineItem",
        CancelCalendarItem = "CancelCalendarItem",
        RemoveItem = "RemoveItem",
    }
);

/// A meeting response object: answers the meeting message or calendar item
/// named by `reference_item_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseObject {
    pub kind: ResponseObjectKind,
    pub reference_item_id: ItemId,
    /// CancelCalendarItem only.
    pub subject: Option<String>,
    /// The text the organizer reads (Accept/Tentative/Decline/Cancel).
    pub body: Option<Body>,
    pub to_recipients: Vec<Mailbox>,
    /// Accept/Tentative/Decline on Exchange 2013 and later.
    pub proposed_start: Option<chrono::DateTime<chrono::Utc>>,
    pub proposed_end: Option<chrono::DateTime<chrono::Utc>>,
    /// CancelCalendarItem only: text put before the original body.
    pub new_body_content: Option<Body>,
}

impl ResponseObject {
    pub fn new(kind: ResponseObjectKind, reference_item_id: ItemId, body: Option<Body>) -> Self {
        Self {
            kind,
            reference_item_id,
            subject: None,
            body,
            to_recipients: Vec::new(),
            proposed_start: None,
            proposed_end: None,
            new_body_content: None,
        }
    }

    fn is_answer(&self) -> bool {
        matches!(
            self.kind,
            ResponseObjectKind::Accept | ResponseObjectKind::TentativelyAccept | ResponseObjectKind::Decline
        )
    }
}

impl Wire for ResponseObject {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        let name = format!("t:{}", self.kind.as_str());
        w.start(&name, &[])?;
        match self.kind {
            ResponseObjectKind::RemoveItem => {}
            ResponseObjectKind::CancelCalendarItem => {
                w.opt_text("t:Subject", self.subject.as_ref())?;
                if let Some(b) = &self.body {
                    b.write(w)?;
                }
                write_mailbox_list(&self.to_recipients, w, "t:ToRecipients")?;
            }
            _ => {
                if let Some(b) = &self.body {
                    b.write(w)?;
                }
                write_mailbox_list(&self.to_recipients, w, "t:ToRecipients")?;
            }
        }
        self.reference_item_id.write_as(w, "t:ReferenceItemId")?;
        if self.is_answer() && w.version >= ServerVersion::Exchange2013_SP1 {
            if let Some(t) = &self.proposed_start {
                w.text_elem("t:ProposedStart", &fmt_datetime(t))?;
            }
            if let Some(t) = &self.proposed_end {
                w.text_elem("t:ProposedEnd", &fmt_datetime(t))?;
            }
        }
        if self.kind == ResponseObjectKind::CancelCalendarItem
            && let Some(b) = &self.new_body_content
        {
            w.text_elem_attrs("t:NewBodyContent", &[("BodyType", b.body_type.as_str())], &b.content)?;
        }
        w.end(&name)
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            kind: el.name.parse()?,
            reference_item_id: ItemId::read(el.req_child("ReferenceItemId")?)?,
            subject: el.child_text("Subject").map(str::to_owned),
            body: el.child("Body").map(Body::read).transpose()?,
            to_recipients: read_mailbox_list(el, "ToRecipients")?,
            proposed_start: el.child_datetime("ProposedStart")?,
            proposed_end: el.child_datetime("ProposedEnd")?,
            new_body_content: el.child("NewBodyContent").map(Body::read).transpose()?,
        })
    }
}

/// One entry of CreateItem's Items.
#[derive(Debug, Clone, PartialEq)]
pub enum NewItem {
    Item(Box<Item>),
    Response(ResponseObject),
}

/// The request.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateItem {
    pub message_disposition: Option<MessageDisposition>,
    pub send_meeting_invitations: Option<SendMeetingInvitations>,
    pub saved_item_folder_id: Option<FolderRef>,
    pub items: Vec<NewItem>,
}

impl CreateItem {
    /// Answers a meeting message (AcceptItem, TentativelyAcceptItem,
    /// DeclineItem), sent and saved, with `text` as the body.
    pub fn respond(kind: ResponseObjectKind, meeting_message: ItemId, text: Option<&str>) -> Self {
        Self {
            message_disposition: Some(MessageDisposition::SendAndSaveCopy),
            send_meeting_invitations: None,
            saved_item_folder_id: None,
            items: vec![NewItem::Response(ResponseObject::new(
                kind,
                meeting_message,
                text.map(Body::text),
            ))],
        }
    }

    /// Creates a calendar item and sends its invitations.
    pub fn meeting(item: Item, calendar: Option<FolderRef>) -> Self {
        Self {
            message_disposition: None,
            send_meeting_invitations: Some(SendMeetingInvitations::SendToAllAndSaveCopy),
            saved_item_folder_id: calendar,
            items: vec![NewItem::Item(Box::new(item))],
        }
    }

    /// Sends a message (saved in Sent Items).
    pub fn send_message(item: Item) -> Self {
        Self {
            message_disposition: Some(MessageDisposition::SendAndSaveCopy),
            send_meeting_invitations: None,
            saved_item_folder_id: None,
            items: vec![NewItem::Item(Box::new(item))],
        }
    }
}

impl Operation for CreateItem {
    type Response = CreateItemResponse;
    const NAME: &'static str = "CreateItem";
    const IDEMPOTENT: bool = false;
}

impl Wire for CreateItem {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        let mut attrs = Vec::new();
        if let Some(d) = self.message_disposition {
            attrs.push(("MessageDisposition", d.as_str()));
        }
        if let Some(s) = self.send_meeting_invitations {
            attrs.push(("SendMeetingInvitations", s.as_str()));
        }
        w.start_payload("m:CreateItem", &attrs)?;
        if let Some(f) = &self.saved_item_folder_id {
            w.start("m:SavedItemFolderId", &[])?;
            f.write(w)?;
            w.end("m:SavedItemFolderId")?;
        }
        w.start("m:Items", &[])?;
        for i in &self.items {
            match i {
                NewItem::Item(item) => item.write(w)?,
                NewItem::Response(r) => r.write(w)?,
            }
        }
        w.end("m:Items")?;
        w.end("m:CreateItem")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        let mut items = Vec::new();
        for c in &el.req_child("Items")?.children {
            if c.name.parse::<ResponseObjectKind>().is_ok() {
                items.push(NewItem::Response(ResponseObject::read(c)?));
            } else if crate::ews::item::ItemKind::from_element_name(&c.name).is_some() {
                items.push(NewItem::Item(Box::new(Item::read(c)?)));
            }
        }
        Ok(Self {
            message_disposition: el.attr("MessageDisposition").map(str::parse).transpose()?,
            send_meeting_invitations: el.attr("SendMeetingInvitations").map(str::parse).transpose()?,
            saved_item_folder_id: el
                .child("SavedItemFolderId")
                .and_then(Element::first_child)
                .map(FolderRef::read)
                .transpose()?,
            items,
        })
    }
}

response_payload!(
    CreateItemResponse,
    Items,
    "m:CreateItemResponse",
    "m:CreateItemResponseMessage"
);
