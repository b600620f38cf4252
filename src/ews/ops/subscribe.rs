//! Subscribe: pull, push and streaming subscriptions to folder events.

use crate::ews::error::EwsError;
use crate::ews::ops::notification::{EventType, read_event_types, write_event_types};
use crate::ews::soap::{MessageContent, Operation, ServerVersion, response_payload};
use crate::ews::types::FolderRef;
use crate::ews::xml::{Element, Wire, XmlWriter};

/// The kind of subscription and its own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionKind {
    /// Events wait on the server for GetEvents; `timeout_minutes` 1..=1440.
    Pull { timeout_minutes: u32 },
    /// The server posts SendNotification to `url`.
    Push { status_frequency_minutes: u32, url: String },
    /// Events flow on an open GetStreamingEvents response (2010 and later).
    Streaming,
}

/// The request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub kind: SubscriptionKind,
    pub folder_ids: Vec<FolderRef>,
    pub event_types: Vec<EventType>,
    /// Resume point for pull and push subscriptions.
    pub watermark: Option<String>,
}

impl Operation for Subscribe {
    type Response = SubscribeResponse;
    const NAME: &'static str = "Subscribe";

    fn check_version(&self, version: ServerVersion) -> Result<(), EwsError> {
        if self.kind == SubscriptionKind::Streaming && !version.has_streaming() {
            return Err(EwsError::Unsupported {
                operation: "streaming Subscribe",
                version: version.as_str(),
            });
        }
        Ok(())
    }
}

impl Wire for Subscribe {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        self.check_version(w.version)?;
        w.start_payload("m:Subscribe", &[])?;
        let name = match self.kind {
            SubscriptionKind::Pull { .. } => "m:PullSubscriptionRequest",
            SubscriptionKind::Push { .. } => "m:PushSubscriptionRequest",
            SubscriptionKind::Streaming => "m:StreamingSubscriptionRequest",
        };
        w.start(name, &[])?;
        w.start("t:FolderIds", &[])?;
        for f in &self.folder_ids {
            f.write(w)?;
        }
        w.end("t:FolderIds")?;
        write_event_types(w, &self.event_types)?;
        if self.kind != SubscriptionKind::Streaming {
            w.opt_text("t:Watermark", self.watermark.as_ref())?;
        }
        match &self.kind {
            SubscriptionKind::Pull { timeout_minutes } => w.text_elem("t:Timeout", &timeout_minutes.to_string())?,
            SubscriptionKind::Push {
                status_frequency_minutes,
                url,
            } => {
                w.text_elem("t:StatusFrequency", &status_frequency_minutes.to_string())?;
                w.text_elem("t:URL", url)?;
            }
            SubscriptionKind::Streaming => {}
        }
        w.end(name)?;
        w.end("m:Subscribe")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        let (req, kind) = if let Some(r) = el.child("PullSubscriptionRequest") {
            (
                r,
                SubscriptionKind::Pull {
                    timeout_minutes: r.child_parse("Timeout")?.unwrap_or(30),
                },
            )
        } else if let Some(r) = el.child("PushSubscriptionRequest") {
            (
                r,
                SubscriptionKind::Push {
                    status_frequency_minutes: r.child_parse("StatusFrequency")?.unwrap_or(30),
                    url: r.req_child("URL")?.text().to_owned(),
                },
            )
        } else {
            (
                el.req_child("StreamingSubscriptionRequest")?,
                SubscriptionKind::Streaming,
            )
        };
        Ok(Self {
            kind,
            folder_ids: match req.child("FolderIds") {
                None => Vec::new(),
                Some(f) => f.children.iter().map(FolderRef::read).collect::<Result<_, _>>()?,
            },
            event_types: read_event_types(req)?,
            watermark: req.child_text("Watermark").map(str::to_owned),
        })
    }
}

/// The content of a SubscribeResponseMessage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    pub subscription_id: String,
    /// Absent for streaming subscriptions.
    pub watermark: Option<String>,
}

impl MessageContent for Subscription {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        w.text_elem("m:SubscriptionId", &self.subscription_id)?;
        w.opt_text("m:Watermark", self.watermark.as_ref())
    }

    fn read(msg: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            subscription_id: msg.req_child("SubscriptionId")?.text().to_owned(),
            watermark: msg.child_text("Watermark").map(str::to_owned),
        })
    }
}

response_payload!(
    SubscribeResponse,
    Subscription,
    "m:SubscribeResponse",
    "m:SubscribeResponseMessage"
);
