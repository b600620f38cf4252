//! Unsubscribe: ends a pull or streaming subscription.

use crate::ews::error::EwsError;
use crate::ews::soap::{Operation, response_payload};
use crate::ews::xml::{Element, Wire, XmlWriter};

/// The request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub subscription_id: String,
}

impl Operation for Unsubscribe {
    type Response = UnsubscribeResponse;
    const NAME: &'static str = "Unsubscribe";
}

impl Wire for Unsubscribe {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        w.start_payload("m:Unsubscribe", &[])?;
        w.text_elem("m:SubscriptionId", &self.subscription_id)?;
        w.end("m:Unsubscribe")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            subscription_id: el.req_child("SubscriptionId")?.text().to_owned(),
        })
    }
}

response_payload!(
    UnsubscribeResponse,
    (),
    "m:UnsubscribeResponse",
    "m:UnsubscribeResponseMessage"
);
