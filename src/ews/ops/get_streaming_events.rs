//! GetStreamingEvents (Exchange 2010 and later): one long HTTP response that
//! carries a sequence of SOAP envelopes, each a GetStreamingEventsResponse.

use crate::ews::error::EwsError;
use crate::ews::ops::notification::Notification;
use crate::ews::soap::{MessageContent, Operation, ServerVersion, response_payload};
use crate::ews::xml::{Element, Wire, XmlWriter};

/// The request. One connection may carry many subscriptions of mailboxes on
/// the same backend (see X-AnchorMailbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetStreamingEvents {
    pub subscription_ids: Vec<String>,
    /// Minutes the server keeps the response open, 1..=30.
    pub connection_timeout_minutes: u32,
}

impl Operation for GetStreamingEvents {
    type Response = GetStreamingEventsResponse;
    const NAME: &'static str = "GetStreamingEvents";

    fn check_version(&self, version: ServerVersion) -> Result<(), EwsError> {
        if !version.has_streaming() {
            return Err(EwsError::Unsupported {
                operation: "GetStreamingEvents",
                version: version.as_str(),
            });
        }
        if !(1..=30).contains(&self.connection_timeout_minutes) {
            return Err(EwsError::Config("ConnectionTimeout outside 1..=30".into()));
        }
        Ok(())
    }
}

impl Wire for GetStreamingEvents {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        self.check_version(w.version)?;
        w.start_payload("m:GetStreamingEvents", &[])?;
        w.start("m:SubscriptionIds", &[])?;
        for id in &self.subscription_ids {
            w.text_elem("t:SubscriptionId", id)?;
        }
        w.end("m:SubscriptionIds")?;
        w.text_elem("m:ConnectionTimeout", &self.connection_timeout_minutes.to_string())?;
        w.end("m:GetStreamingEvents")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            subscription_ids: el
                .req_child("SubscriptionIds")?
                .children_named("SubscriptionId")
                .map(|s| s.text().to_owned())
                .collect(),
            connection_timeout_minutes: el.child_parse("ConnectionTimeout")?.unwrap_or(30),
        })
    }
}

crate::ews::types::wire_enum!(
    /// `m:ConnectionStatus`.
    ConnectionStatus {
        Ok = "OK",
        Closed = "Closed",
    }
);

/// The content of one GetStreamingEventsResponseMessage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamingEvents {
    pub notifications: Vec<Notification>,
    /// Subscriptions the server dropped (expired, moved mailbox).
    pub error_subscription_ids: Vec<String>,
    /// `Closed` ends the response: open a new one.
    pub connection_status: Option<ConnectionStatus>,
}

impl MessageContent for StreamingEvents {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        if !self.notifications.is_empty() {
            w.start("m:Notifications", &[])?;
            for n in &self.notifications {
                n.write_as(w, "t:Notification")?;
            }
            w.end("m:Notifications")?;
        }
        if !self.error_subscription_ids.is_empty() {
            w.start("m:ErrorSubscriptionIds", &[])?;
            for id in &self.error_subscription_ids {
                w.text_elem("t:SubscriptionId", id)?;
            }
            w.end("m:ErrorSubscriptionIds")?;
        }
        w.opt_text("m:ConnectionStatus", self.connection_status.as_ref())
    }

    fn read(msg: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            notifications: match msg.child("Notifications") {
                None => Vec::new(),
                Some(list) => list
                    .children_named("Notification")
                    .map(Notification::read)
                    .collect::<Result<_, _>>()?,
            },
            error_subscription_ids: msg
                .child("ErrorSubscriptionIds")
                .map(|l| l.children.iter().map(|s| s.text().to_owned()).collect())
                .unwrap_or_default(),
            connection_status: crate::ews::types::opt_enum(msg, "ConnectionStatus"),
        })
    }
}

response_payload!(
    GetStreamingEventsResponse,
    StreamingEvents,
    "m:GetStreamingEventsResponse",
    "m:GetStreamingEventsResponseMessage"
);

/// Splits complete SOAP envelopes off the front of a streaming buffer.
/// Returns the envelopes and how many bytes they used; the caller keeps the
/// rest for the next chunk. Envelope end tags are found by local name, so
/// any prefix works.
pub fn split_envelopes(buf: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'<'
            && buf.get(i + 1) == Some(&b'/')
            && let Some(gt) = buf[i..].iter().position(|b| *b == b'>')
        {
            let tag = &buf[i + 2..i + gt];
            let local = tag.rsplit(|b| *b == b':').next().unwrap_or(tag);
            if local.trim_ascii() == b"Envelope" {
                let end = i + gt + 1;
                out.push(&buf[start..end]);
                start = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    (out, start)
}
