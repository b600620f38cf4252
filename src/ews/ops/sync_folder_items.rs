//! SyncFolderItems: the changes in one folder since a SyncState.

use crate::ews::error::EwsError;
use crate::ews::item::{Item, ItemKind, Shape};
use crate::ews::soap::{MessageContent, Operation, ServerVersion, response_payload};
use crate::ews::types::{FolderRef, ItemId};
use crate::ews::xml::{Element, Wire, XmlWriter, parse_bool};

/// Exchange's upper bound for MaxChangesReturned.
pub const MAX_CHANGES_LIMIT: u32 = 512;

/// The request. `sync_state` is `None` for a first synchronization.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncFolderItems {
    pub item_shape: Shape,
    pub folder: FolderRef,
    pub sync_state: Option<String>,
    pub ignore: Vec<ItemId>,
    /// 1 to 512.
    pub max_changes_returned: u32,
}

impl SyncFolderItems {
    /// The next page of changes of `folder` from `sync_state` (ids only;
    /// GetItem fetches what matters), as many as Exchange allows.
    pub fn ids(folder: FolderRef, sync_state: Option<String>) -> Self {
        Self {
            item_shape: Shape::new(crate::ews::item::BaseShape::IdOnly),
            folder,
            sync_state,
            ignore: Vec::new(),
            max_changes_returned: MAX_CHANGES_LIMIT,
        }
    }
}

impl Operation for SyncFolderItems {
    type Response = SyncFolderItemsResponse;
    const NAME: &'static str = "SyncFolderItems";

    fn check_version(&self, _version: ServerVersion) -> Result<(), EwsError> {
        if !(1..=MAX_CHANGES_LIMIT).contains(&self.max_changes_returned) {
            return Err(EwsError::Config(format!(
                "MaxChangesReturned {} outside 1..=512",
                self.max_changes_returned
            )));
        }
        Ok(())
    }
}

impl Wire for SyncFolderItems {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        self.check_version(w.version)?;
        w.start_payload("m:SyncFolderItems", &[])?;
        self.item_shape.write_as(w, "m:ItemShape")?;
        w.start("m:SyncFolderId", &[])?;
        self.folder.write(w)?;
        w.end("m:SyncFolderId")?;
        if let Some(s) = &self.sync_state {
            w.text_elem("m:SyncState", s)?;
        }
        if !self.ignore.is_empty() {
            w.start("m:Ignore", &[])?;
            for id in &self.ignore {
                id.write_as(w, "t:ItemId")?;
            }
            w.end("m:Ignore")?;
        }
        w.text_elem("m:MaxChangesReturned", &self.max_changes_returned.to_string())?;
        w.end("m:SyncFolderItems")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        let folder = el
            .req_child("SyncFolderId")?
            .first_child()
            .ok_or_else(|| EwsError::malformed("empty SyncFolderId"))?;
        Ok(Self {
            item_shape: Shape::read(el.req_child("ItemShape")?)?,
            folder: FolderRef::read(folder)?,
            sync_state: el.child_text("SyncState").filter(|s| !s.is_empty()).map(str::to_owned),
            ignore: match el.child("Ignore") {
                None => Vec::new(),
                Some(i) => i.children_named("ItemId").map(ItemId::read).collect::<Result<_, _>>()?,
            },
            max_changes_returned: el.child_parse("MaxChangesReturned")?.unwrap_or(0),
        })
    }
}

/// One change in the folder.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Create(Item),
    Update(Item),
    Delete(ItemId),
    ReadFlagChange { item_id: ItemId, is_read: bool },
}

/// The content of a SyncFolderItemsResponseMessage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncFolderItemsResult {
    /// The state to store and send next time.
    pub sync_state: String,
    /// False when more changes wait: call again at once with the new state.
    pub includes_last_item_in_range: bool,
    pub changes: Vec<Change>,
}

fn first_item(el: &Element) -> Result<Item, EwsError> {
    el.children
        .iter()
        .find(|c| ItemKind::from_element_name(&c.name).is_some())
        .ok_or_else(|| EwsError::malformed(format!("<{}> without an item", el.name)))
        .and_then(Item::read)
}

impl MessageContent for SyncFolderItemsResult {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        w.text_elem("m:SyncState", &self.sync_state)?;
        w.opt_bool("m:IncludesLastItemInRange", Some(self.includes_last_item_in_range))?;
        w.start("m:Changes", &[])?;
        for c in &self.changes {
            match c {
                Change::Create(item) => {
                    w.start("t:Create", &[])?;
                    item.write(w)?;
                    w.end("t:Create")?;
                }
                Change::Update(item) => {
                    w.start("t:Update", &[])?;
                    item.write(w)?;
                    w.end("t:Update")?;
                }
                Change::Delete(id) => {
                    w.start("t:Delete", &[])?;
                    id.write_as(w, "t:ItemId")?;
                    w.end("t:Delete")?;
                }
                Change::ReadFlagChange { item_id, is_read } => {
                    w.start("t:ReadFlagChange", &[])?;
                    item_id.write_as(w, "t:ItemId")?;
                    w.opt_bool("t:IsRead", Some(*is_read))?;
                    w.end("t:ReadFlagChange")?;
                }
            }
        }
        w.end("m:Changes")
    }

    fn read(msg: &Element) -> Result<Self, EwsError> {
        let mut changes = Vec::new();
        if let Some(list) = msg.child("Changes") {
            for c in &list.children {
                match c.name.as_str() {
                    "Create" => changes.push(Change::Create(first_item(c)?)),
                    "Update" => changes.push(Change::Update(first_item(c)?)),
                    "Delete" => changes.push(Change::Delete(ItemId::read(c.req_child("ItemId")?)?)),
                    "ReadFlagChange" => changes.push(Change::ReadFlagChange {
                        item_id: ItemId::read(c.req_child("ItemId")?)?,
                        is_read: parse_bool(c.req_child("IsRead")?.text())?,
                    }),
                    _ => {}
                }
            }
        }
        Ok(Self {
            sync_state: msg.child_text("SyncState").unwrap_or_default().to_owned(),
            includes_last_item_in_range: msg.child_bool("IncludesLastItemInRange")?.unwrap_or(true),
            changes,
        })
    }
}

response_payload!(
    SyncFolderItemsResponse,
    SyncFolderItemsResult,
    "m:SyncFolderItemsResponse",
    "m:SyncFolderItemsResponseMessage"
);
