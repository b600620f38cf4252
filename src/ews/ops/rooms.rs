//! GetRoomLists and GetRooms (Exchange 2010 and later): the room lists of
//! the organization and the rooms in one list. Their responses carry the
//! status on the payload itself, without a ResponseMessages wrapper.

use crate::ews::error::EwsError;
use crate::ews::soap::{Operation, ResponseClass, ResponseMessage, ServerVersion};
use crate::ews::types::Mailbox;
use crate::ews::xml::{Element, Wire, XmlWriter};

fn require_2010(name: &'static str, version: ServerVersion) -> Result<(), EwsError> {
    if version < ServerVersion::Exchange2010_SP2 {
        return Err(EwsError::Unsupported {
            operation: name,
            version: version.as_str(),
        });
    }
    Ok(())
}

/// The GetRoomLists request (it has no parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GetRoomLists;

impl Operation for GetRoomLists {
    type Response = GetRoomListsResponse;
    const NAME: &'static str = "GetRoomLists";

    fn check_version(&self, version: ServerVersion) -> Result<(), EwsError> {
        require_2010(Self::NAME, version)
    }
}

impl Wire for GetRoomLists {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        self.check_version(w.version)?;
        w.start_payload("m:GetRoomLists", &[])?;
        w.end("m:GetRoomLists")
    }

    fn read(_el: &Element) -> Result<Self, EwsError> {
        Ok(GetRoomLists)
    }
}

fn write_status(w: &mut XmlWriter, name: &str, status: &ResponseMessage<()>) -> Result<(), EwsError> {
    let class = match status.class {
        ResponseClass::Success => "Success",
        ResponseClass::Warning => "Warning",
        ResponseClass::Error => "Error",
    };
    w.start_payload(name, &[("ResponseClass", class)])?;
    if let Some(t) = &status.message_text {
        w.text_elem("m:MessageText", t)?;
    }
    w.text_elem("m:ResponseCode", status.code.as_str())?;
    w.text_elem("m:DescriptiveLinkKey", "0")
}

/// GetRoomListsResponse: the status and the room list addresses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GetRoomListsResponse {
    pub status: ResponseMessage<()>,
    pub room_lists: Vec<Mailbox>,
}

impl GetRoomListsResponse {
    pub fn into_result(self) -> Result<Vec<Mailbox>, EwsError> {
        self.status.into_result().map(|()| self.room_lists)
    }
}

impl crate::ews::soap::ResponseStatus for GetRoomListsResponse {}

impl Wire for GetRoomListsResponse {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        write_status(w, "m:GetRoomListsResponse", &self.status)?;
        w.start("m:RoomLists", &[])?;
        for m in &self.room_lists {
            m.write_as(w, "t:Address")?;
        }
        w.end("m:RoomLists")?;
        w.end("m:GetRoomListsResponse")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            status: ResponseMessage::read(el)?,
            room_lists: match el.child("RoomLists") {
                None => Vec::new(),
                Some(l) => l
                    .children_named("Address")
                    .map(Mailbox::read)
                    .collect::<Result<_, _>>()?,
            },
        })
    }
}

/// The GetRooms request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRooms {
    /// The room list's SMTP address.
    pub room_list: String,
}

impl Operation for GetRooms {
    type Response = GetRoomsResponse;
    const NAME: &'static str = "GetRooms";

    fn check_version(&self, version: ServerVersion) -> Result<(), EwsError> {
        require_2010(Self::NAME, version)
    }
}

impl Wire for GetRooms {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        self.check_version(w.version)?;
        w.start_payload("m:GetRooms", &[])?;
        w.start("m:RoomList", &[])?;
        w.text_elem("t:EmailAddress", &self.room_list)?;
        w.end("m:RoomList")?;
        w.end("m:GetRooms")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            room_list: el.req_child("RoomList")?.req_child("EmailAddress")?.text().to_owned(),
        })
    }
}

/// GetRoomsResponse: the status and the rooms' mailboxes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GetRoomsResponse {
    pub status: ResponseMessage<()>,
    pub rooms: Vec<Mailbox>,
}

impl GetRoomsResponse {
    pub fn into_result(self) -> Result<Vec<Mailbox>, EwsError> {
        self.status.into_result().map(|()| self.rooms)
    }
}

impl crate::ews::soap::ResponseStatus for GetRoomsResponse {}

impl Wire for GetRoomsResponse {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        write_status(w, "m:GetRoomsResponse", &self.status)?;
        w.start("m:Rooms", &[])?;
        for m in &self.rooms {
            w.start("t:Room", &[])?;
            m.write_as(w, "t:Id")?;
            w.end("t:Room")?;
        }
        w.end("m:Rooms")?;
        w.end("m:GetRoomsResponse")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            status: ResponseMessage::read(el)?,
            rooms: match el.child("Rooms") {
                None => Vec::new(),
                Some(l) => l
                    .children_named("Room")
                    .filter_map(|r| r.child("Id"))
                    .map(Mailbox::read)
                    .collect::<Result<_, _>>()?,
            },
        })
    }
}
