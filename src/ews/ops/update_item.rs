//! UpdateItem: set, append or delete properties of existing items (resa
//! moves a booking it created from the web, or flags a processed message).

use crate::ews::error::EwsError;
use crate::ews::item::{Item, PropertyPath};
use crate::ews::ops::create_item::MessageDisposition;
use crate::ews::ops::get_item::{ItemRef, Items};
use crate::ews::soap::{MessageContent, Operation, response_payload};
use crate::ews::types::wire_enum;
use crate::ews::xml::{Element, Wire, XmlWriter};

wire_enum!(
    /// `ConflictResolution`.
    ConflictResolution {
        NeverOverwrite = "NeverOverwrite",
        AutoResolve = "AutoResolve",
        AlwaysOverwrite = "AlwaysOverwrite",
    }
);

wire_enum!(
    /// `SendMeetingInvitationsOrCancellations`.
    SendInvitationsOrCancellations {
        SendToNone = "SendToNone",
        SendOnlyToAll = "SendOnlyToAll",
        SendOnlyToChanged = "SendOnlyToChanged",
        SendToAllAndSaveCopy = "SendToAllAndSaveCopy",
        SendToChangedAndSaveCopy = "SendToChangedAndSaveCopy",
    }
);

/// One property change. For Set and Append, `item` is an item of the right
/// kind carrying only the property named by `path`.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Set { path: PropertyPath, item: Item },
    Append { path: PropertyPath, item: Item },
    Delete { path: PropertyPath },
}

/// The changes to one item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemChange {
    pub item: ItemRef,
    pub updates: Vec<Update>,
}

/// The request.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateItem {
    pub conflict_resolution: ConflictResolution,
    pub message_disposition: Option<MessageDisposition>,
    /// Required by Exchange when the items are calendar items.
    pub send_meeting_invitations_or_cancellations: Option<SendInvitationsOrCancellations>,
    pub item_changes: Vec<ItemChange>,
}

impl Operation for UpdateItem {
    type Response = UpdateItemResponse;
    const NAME: &'static str = "UpdateItem";
    const IDEMPOTENT: bool = false;
}

impl Wire for UpdateItem {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        let mut attrs = vec![("ConflictResolution", self.conflict_resolution.as_str())];
        if let Some(d) = self.message_disposition {
            attrs.push(("MessageDisposition", d.as_str()));
        }
        if let Some(s) = self.send_meeting_invitations_or_cancellations {
            attrs.push(("SendMeetingInvitationsOrCancellations", s.as_str()));
        }
        w.start_payload("m:UpdateItem", &attrs)?;
        w.start("m:ItemChanges", &[])?;
        for change in &self.item_changes {
            w.start("t:ItemChange", &[])?;
            change.item.write(w)?;
            w.start("t:Updates", &[])?;
            for u in &change.updates {
                match u {
                    Update::Set { path, item } => {
                        w.start("t:SetItemField", &[])?;
                        path.write(w)?;
                        item.write(w)?;
                        w.end("t:SetItemField")?;
                    }
                    Update::Append { path, item } => {
                        w.start("t:AppendToItemField", &[])?;
                        path.write(w)?;
                        item.write(w)?;
                        w.end("t:AppendToItemField")?;
                    }
                    Update::Delete { path } => {
                        w.start("t:DeleteItemField", &[])?;
                        path.write(w)?;
                        w.end("t:DeleteItemField")?;
                    }
                }
            }
            w.end("t:Updates")?;
            w.end("t:ItemChange")?;
        }
        w.end("m:ItemChanges")?;
        w.end("m:UpdateItem")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        let mut item_changes = Vec::new();
        for change in el.req_child("ItemChanges")?.children_named("ItemChange") {
            let item = ItemRef::read_list(change)?
                .into_iter()
                .next()
                .ok_or_else(|| EwsError::malformed("ItemChange without an item id"))?;
            let mut updates = Vec::new();
            for u in &change.req_child("Updates")?.children {
                let path = u
                    .children
                    .iter()
                    .find_map(|c| PropertyPath::read(c).transpose())
                    .transpose()?
                    .ok_or_else(|| EwsError::malformed("update without a property path"))?;
                let item = || -> Result<Item, EwsError> {
                    u.children
                        .iter()
                        .find(|c| crate::ews::item::ItemKind::from_element_name(&c.name).is_some())
                        .ok_or_else(|| EwsError::malformed("update without an item"))
                        .and_then(Item::read)
                };
                match u.name.as_str() {
                    "SetItemField" => updates.push(Update::Set { path, item: item()? }),
                    "AppendToItemField" => updates.push(Update::Append { path, item: item()? }),
                    "DeleteItemField" => updates.push(Update::Delete { path }),
                    _ => {}
                }
            }
            item_changes.push(ItemChange { item, updates });
        }
        Ok(Self {
            conflict_resolution: el
                .attr("ConflictResolution")
                .map(str::parse)
                .transpose()?
                .unwrap_or(ConflictResolution::AutoResolve),
            message_disposition: el.attr("MessageDisposition").map(str::parse).transpose()?,
            send_meeting_invitations_or_cancellations: el
                .attr("SendMeetingInvitationsOrCancellations")
                .map(str::parse)
                .transpose()?,
            item_changes,
        })
    }
}

/// The content of an UpdateItemResponseMessage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateItemResult {
    pub items: Items,
    /// Conflicts Exchange resolved (AutoResolve) while applying the change.
    pub conflict_count: u32,
}

impl MessageContent for UpdateItemResult {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        self.items.write(w)?;
        w.start("m:ConflictResults", &[])?;
        w.text_elem("t:Count", &self.conflict_count.to_string())?;
        w.end("m:ConflictResults")
    }

    fn read(msg: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            items: Items::read(msg)?,
            conflict_count: msg
                .child("ConflictResults")
                .map(|c| c.child_parse("Count"))
                .transpose()?
                .flatten()
                .unwrap_or(0),
        })
    }

    fn write_for_error(w: &mut XmlWriter) -> Result<(), EwsError> {
        Items::write_for_error(w)
    }
}

response_payload!(
    UpdateItemResponse,
    UpdateItemResult,
    "m:UpdateItemResponse",
    "m:UpdateItemResponseMessage"
);
