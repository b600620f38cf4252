//! FindItem with a CalendarView: the occurrences in a time window, expanded
//! by the server (recurring masters become their occurrences).

use chrono::{DateTime, Utc};

use crate::ews::error::EwsError;
use crate::ews::item::{Item, Shape, read_items};
use crate::ews::soap::{MessageContent, Operation, response_payload};
use crate::ews::types::FolderRef;
use crate::ews::xml::{Element, Wire, XmlWriter, fmt_datetime, parse_bool, parse_datetime};

/// `m:CalendarView`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub max_entries_returned: Option<u32>,
}

/// The request (Traversal is always Shallow: calendars have no subfolders
/// that resa reads).
#[derive(Debug, Clone, PartialEq)]
pub struct FindItem {
    pub item_shape: Shape,
    pub calendar_view: CalendarView,
    pub parent_folder_ids: Vec<FolderRef>,
}

impl Operation for FindItem {
    type Response = FindItemResponse;
    const NAME: &'static str = "FindItem";
}

impl Wire for FindItem {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        w.start_payload("m:FindItem", &[("Traversal", "Shallow")])?;
        self.item_shape.write_as(w, "m:ItemShape")?;
        let (s, e) = (
            fmt_datetime(&self.calendar_view.start),
            fmt_datetime(&self.calendar_view.end),
        );
        let max = self.calendar_view.max_entries_returned.map(|m| m.to_string());
        let mut attrs = Vec::new();
        if let Some(m) = &max {
            attrs.push(("MaxEntriesReturned", m.as_str()));
        }
        attrs.push(("StartDate", s.as_str()));
        attrs.push(("EndDate", e.as_str()));
        w.empty("m:CalendarView", &attrs)?;
        w.start("m:ParentFolderIds", &[])?;
        for f in &self.parent_folder_ids {
            f.write(w)?;
        }
        w.end("m:ParentFolderIds")?;
        w.end("m:FindItem")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        let cv = el.req_child("CalendarView")?;
        Ok(Self {
            item_shape: Shape::read(el.req_child("ItemShape")?)?,
            calendar_view: CalendarView {
                start: parse_datetime(cv.req_attr("StartDate")?)?,
                end: parse_datetime(cv.req_attr("EndDate")?)?,
                max_entries_returned: cv
                    .attr("MaxEntriesReturned")
                    .map(|m| m.parse().map_err(|_| EwsError::malformed("bad MaxEntriesReturned")))
                    .transpose()?,
            },
            parent_folder_ids: el
                .req_child("ParentFolderIds")?
                .children
                .iter()
                .map(FolderRef::read)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// `m:RootFolder` of a FindItem response message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FindItemResult {
    pub total_items_in_view: u32,
    pub includes_last_item_in_range: bool,
    pub items: Vec<Item>,
}

impl MessageContent for FindItemResult {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        let total = self.total_items_in_view.to_string();
        w.start(
            "m:RootFolder",
            &[
                ("TotalItemsInView", total.as_str()),
                (
                    "IncludesLastItemInRange",
                    if self.includes_last_item_in_range {
                        "true"
                    } else {
                        "false"
                    },
                ),
            ],
        )?;
        w.start("t:Items", &[])?;
        for i in &self.items {
            i.write(w)?;
        }
        w.end("t:Items")?;
        w.end("m:RootFolder")
    }

    fn read(msg: &Element) -> Result<Self, EwsError> {
        let root = msg.req_child("RootFolder")?;
        Ok(Self {
            total_items_in_view: root.attr("TotalItemsInView").and_then(|t| t.parse().ok()).unwrap_or(0),
            includes_last_item_in_range: root
                .attr("IncludesLastItemInRange")
                .map(parse_bool)
                .transpose()?
                .unwrap_or(true),
            items: match root.child("Items") {
                Some(list) => read_items(list)?,
                None => Vec::new(),
            },
        })
    }
}

response_payload!(
    FindItemResponse,
    FindItemResult,
    "m:FindItemResponse",
    "m:FindItemResponseMessage"
);
