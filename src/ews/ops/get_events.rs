//! GetEvents: drains a pull subscription from a watermark.

use crate::ews::error::EwsError;
use crate::ews::ops::notification::Notification;
use crate::ews::soap::{MessageContent, Operation, response_payload};
use crate::ews::xml::{Element, Wire, XmlWriter};

/// The request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetEvents {
    pub subscription_id: String,
    pub watermark: String,
}

impl Operation for GetEvents {
    type Response = GetEventsResponse;
    const NAME: &'static str = "GetEvents";
}

impl Wire for GetEvents {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        w.start_payload("m:GetEvents", &[])?;
        w.text_elem("m:SubscriptionId", &self.subscription_id)?;
        w.text_elem("m:Watermark", &self.watermark)?;
        w.end("m:GetEvents")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            subscription_id: el.req_child("SubscriptionId")?.text().to_owned(),
            watermark: el.req_child("Watermark")?.text().to_owned(),
        })
    }
}

/// The content of a GetEventsResponseMessage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetEventsResult {
    pub notification: Notification,
}

impl MessageContent for GetEventsResult {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        self.notification.write_as(w, "m:Notification")
    }

    fn read(msg: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            notification: Notification::read(msg.req_child("Notification")?)?,
        })
    }
}

response_payload!(
    GetEventsResponse,
    GetEventsResult,
    "m:GetEventsResponse",
    "m:GetEventsResponseMessage"
);
