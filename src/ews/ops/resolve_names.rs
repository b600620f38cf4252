//! ResolveNames: turns an Exchange legacy DN (RoutingType EX) or a name
//! into an SMTP mailbox.

use crate::ews::error::EwsError;
use crate::ews::soap::{MessageContent, Operation, response_payload};
use crate::ews::types::Mailbox;
use crate::ews::xml::{Element, Wire, XmlWriter, parse_bool};

/// The request. Contact data is never asked for: resa needs the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveNames {
    /// A legacy DN (`/O=.../CN=...`), an SMTP address or a display name.
    pub unresolved_entry: String,
}

impl Operation for ResolveNames {
    type Response = ResolveNamesResponse;
    const NAME: &'static str = "ResolveNames";
}

impl Wire for ResolveNames {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        w.start_payload("m:ResolveNames", &[("ReturnFullContactData", "false")])?;
        w.text_elem("m:UnresolvedEntry", &self.unresolved_entry)?;
        w.end("m:ResolveNames")
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        Ok(Self {
            unresolved_entry: el.req_child("UnresolvedEntry")?.text().to_owned(),
        })
    }
}

/// One candidate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolution {
    pub mailbox: Mailbox,
    /// `Contact/DisplayName`, when the server sent contact data.
    pub display_name: Option<String>,
}

/// `m:ResolutionSet`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolutionSet {
    pub includes_last_item_in_range: bool,
    pub resolutions: Vec<Resolution>,
}

impl MessageContent for ResolutionSet {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        let total = self.resolutions.len().to_string();
        w.start(
            "m:ResolutionSet",
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
        for r in &self.resolutions {
            w.start("t:Resolution", &[])?;
            r.mailbox.write_as(w, "t:Mailbox")?;
            if let Some(n) = &r.display_name {
                w.start("t:Contact", &[])?;
                w.text_elem("t:DisplayName", n)?;
                w.end("t:Contact")?;
            }
            w.end("t:Resolution")?;
        }
        w.end("m:ResolutionSet")
    }

    fn read(msg: &Element) -> Result<Self, EwsError> {
        let Some(set) = msg.child("ResolutionSet") else {
            return Ok(Self::default());
        };
        Ok(Self {
            includes_last_item_in_range: set
                .attr("IncludesLastItemInRange")
                .map(parse_bool)
                .transpose()?
                .unwrap_or(true),
            resolutions: set
                .children_named("Resolution")
                .map(|r| {
                    Ok(Resolution {
                        mailbox: Mailbox::read(r.req_child("Mailbox")?)?,
                        display_name: r
                            .child("Contact")
                            .and_then(|c| c.child_text("DisplayName"))
                            .map(str::to_owned),
                    })
                })
                .collect::<Result<_, EwsError>>()?,
        })
    }
}

response_payload!(
    ResolveNamesResponse,
    ResolutionSet,
    "m:ResolveNamesResponse",
    "m:ResolveNamesResponseMessage"
);
