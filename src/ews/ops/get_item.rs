//! GetItem: full properties of items by id.

use crate::ews::error::EwsError;
use crate::ews::item::{Item, Shape, read_items};
use crate::ews::soap::{MessageContent, Operation, response_payload};
use crate::ews::types::ItemId;
use crate::ews::xml::{Element, Wire, XmlWriter};

/// An item reference in ItemIds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemRef {
    Id(ItemId),
    /// The n-th occurrence (1-based) of a recurring master.
    Occurrence {
        recurring_master_id: String,
        instance_index: u32,
    },
    /// The master of the series an occurrence or exception belongs to.
    RecurringMaster {
        occurrence_id: String,
    },
}

impl ItemRef {
    pub fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        match self {
            ItemRef::Id(id) => id.write_as(w, "t:ItemId"),
            ItemRef::Occurrence {
                recurring_master_id,
                instance_index,
            } => w.empty(
                "t:OccurrenceItemId",
                &[
                    ("RecurringMasterId", recurring_master_id),
                    ("InstanceIndex", &instance_index.to_string()),
                ],
            ),
            ItemRef::RecurringMaster { occurrence_id } => {
                w.empty("t:RecurringMasterItemId", &[("OccurrenceId", occurrence_id)])
            }
        }
    }

    pub fn read(el: &Element) -> Result<Option<Self>, EwsError> {
        Ok(match el.name.as_str() {
            "ItemId" => Some(ItemRef::Id(ItemId::read(el)?)),
            "OccurrenceItemId" => Some(ItemRef::Occurrence {
                recurring_master_id: el.req_attr("RecurringMasterId")?.to_owned(),
                instance_index: el
                    .req_attr("InstanceIndex")?
                    .parse()
                    .map_err(|_| EwsError::malformed("bad InstanceIndex"))?,
            }),
            "RecurringMasterItemId" => Some(ItemRef::RecurringMaster {
                occurrence_id: el.req_attr("OccurrenceId")?.to_owned(),
            }),
            _ => None,
        })
    }

    pub fn read_list(el: &Element) -> Result<Vec<Self>, EwsError> {
        let mut out = Vec::new();
        for c in &el.children {
            if let Some(r) = ItemRef::read(c)? {
                out.push(r);
            }
        }
        Ok(out)
    }
}

/// The request.
#[derive(Debug, Clone, PartialEq)]
pub struct GetItem {
    pub item_shape: Shape,
    pub item_ids: Vec<ItemRef>,
}

impl GetItem {
    /// Meeting messages or calendar items with everything resa reads
    /// (see [`Shape::meeting`]).
    pub fn meetings(ids: impl IntoIterator<Item = ItemId>) -> Self {
        Self {
            item_shape: Shape::meeting(),
            item_ids: ids.into_iter().map(ItemRef::Id).collect(),
        }
    }
}

impl Operation for GetItem {
    type Response = GetItemResponse;
    const NAME: &'static str = "GetItem";
}

impl Wire for GetItem {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        if self.item_ids.is_empty() {
            return Err(EwsError::Config("GetItem needs at least one id".into()));
        }
        w.start_payload("m:GetItem", &[])?;
        self.item_shape.write_as(w, "m:ItemShape")?;
        w.start("m:ItemIds", &[])?;
        for id in &self.item_ids {
            id.write(w)?;
        }
        w.end("m:ItemIds")?;
        w.end("m:GetItem")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            item_shape: Shape::read(el.req_child("ItemShape")?)?,
            item_ids: ItemRef::read_list(el.req_child("ItemIds")?)?,
        })
    }
}

/// `m:Items` of an item response message (GetItem, CreateItem, UpdateItem).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Items {
    pub items: Vec<Item>,
}

impl MessageContent for Items {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        w.start("m:Items", &[])?;
        for i in &self.items {
            i.write(w)?;
        }
        w.end("m:Items")
    }

    fn write_for_error(w: &mut XmlWriter) -> Result<(), EwsError> {
        w.empty("m:Items", &[])
    }

    fn read(msg: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            items: match msg.child("Items") {
                Some(list) => read_items(list)?,
                None => Vec::new(),
            },
        })
    }
}

response_payload!(GetItemResponse, Items, "m:GetItemResponse", "m:GetItemResponseMessage");
