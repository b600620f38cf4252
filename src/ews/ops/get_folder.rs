//! GetFolder: folder ids and counts (resa uses it to learn a mailbox's
//! Inbox and Calendar ids and to check access).

use crate::ews::error::EwsError;
use crate::ews::item::Shape;
use crate::ews::soap::{MessageContent, Operation, response_payload};
use crate::ews::types::{FolderRef, ItemId};
use crate::ews::xml::{Element, Wire, XmlWriter};

/// The request.
#[derive(Debug, Clone, PartialEq)]
pub struct GetFolder {
    pub folder_shape: Shape,
    pub folder_ids: Vec<FolderRef>,
}

impl Operation for GetFolder {
    type Response = GetFolderResponse;
    const NAME: &'static str = "GetFolder";
}

impl Wire for GetFolder {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        w.start_payload("m:GetFolder", &[])?;
        // FolderShape has no BodyType.
        let shape = Shape {
            body_type: None,
            ..self.folder_shape.clone()
        };
        shape.write_as(w, "m:FolderShape")?;
        w.start("m:FolderIds", &[])?;
        for f in &self.folder_ids {
            f.write(w)?;
        }
        w.end("m:FolderIds")?;
        w.end("m:GetFolder")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            folder_shape: Shape::read(el.req_child("FolderShape")?)?,
            folder_ids: el
                .req_child("FolderIds")?
                .children
                .iter()
                .map(FolderRef::read)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// A folder as GetFolder returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Folder {
    /// `Folder`, `CalendarFolder`, `SearchFolder`...
    pub element: String,
    pub folder_id: Option<ItemId>,
    pub parent_folder_id: Option<ItemId>,
    pub folder_class: Option<String>,
    pub display_name: Option<String>,
    pub total_count: Option<u32>,
    pub child_folder_count: Option<u32>,
    pub unread_count: Option<u32>,
}

impl Wire for Folder {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        let name = format!(
            "t:{}",
            if self.element.is_empty() {
                "Folder"
            } else {
                &self.element
            }
        );
        w.start(&name, &[])?;
        if let Some(id) = &self.folder_id {
            id.write_as(w, "t:FolderId")?;
        }
        if let Some(id) = &self.parent_folder_id {
            id.write_as(w, "t:ParentFolderId")?;
        }
        w.opt_text("t:FolderClass", self.folder_class.as_ref())?;
        w.opt_text("t:DisplayName", self.display_name.as_ref())?;
        w.opt_text("t:TotalCount", self.total_count.as_ref())?;
        w.opt_text("t:ChildFolderCount", self.child_folder_count.as_ref())?;
        if name == "t:Folder" {
            w.opt_text("t:UnreadCount", self.unread_count.as_ref())?;
        }
        w.end(&name)
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            element: el.name.clone(),
            folder_id: el.child("FolderId").map(ItemId::read).transpose()?,
            parent_folder_id: el.child("ParentFolderId").map(ItemId::read).transpose()?,
            folder_class: el.child_text("FolderClass").map(str::to_owned),
            display_name: el.child_text("DisplayName").map(str::to_owned),
            total_count: el.child_parse("TotalCount")?,
            child_folder_count: el.child_parse("ChildFolderCount")?,
            unread_count: el.child_parse("UnreadCount")?,
        })
    }
}

/// `m:Folders` of a GetFolder response message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Folders {
    pub folders: Vec<Folder>,
}

impl MessageContent for Folders {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        w.start("m:Folders", &[])?;
        for f in &self.folders {
            f.write(w)?;
        }
        w.end("m:Folders")
    }

    fn read(msg: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            folders: match msg.child("Folders") {
                None => Vec::new(),
                Some(list) => list.children.iter().map(Folder::read).collect::<Result<_, _>>()?,
            },
        })
    }
}

response_payload!(
    GetFolderResponse,
    Folders,
    "m:GetFolderResponse",
    "m:GetFolderResponseMessage"
);
