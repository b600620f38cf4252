//! The SOAP envelope, in one place: request headers (RequestServerVersion,
//! ExchangeImpersonation, TimeZoneContext), the response header
//! (ServerVersionInfo), SOAP faults, and the `ResponseMessages` wrapper that
//! most operations share. Both directions are here so that a simulator can
//! read what the client writes and write what the client reads.

use std::time::Duration;

use super::error::{EwsError, ResponseCode};
use super::xml::{self, Element, NS_SOAP, NS_TYPES, Wire, XmlWriter};

/// The EWS schema versions resa speaks. The order is chronological, so
/// `version >= ServerVersion::Exchange2010_SP2` reads as "2010 SP2 or later".
#[allow(non_camel_case_types)] // the names are the RequestServerVersion values
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServerVersion {
    Exchange2007_SP1,
    Exchange2010_SP2,
    Exchange2013_SP1,
    Exchange2016,
}

impl ServerVersion {
    pub const ALL: [ServerVersion; 4] = [
        ServerVersion::Exchange2007_SP1,
        ServerVersion::Exchange2010_SP2,
        ServerVersion::Exchange2013_SP1,
        ServerVersion::Exchange2016,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServerVersion::Exchange2007_SP1 => "Exchange2007_SP1",
            ServerVersion::Exchange2010_SP2 => "Exchange2010_SP2",
            ServerVersion::Exchange2013_SP1 => "Exchange2013_SP1",
            ServerVersion::Exchange2016 => "Exchange2016",
        }
    }

    /// Reads a RequestServerVersion value; intermediate values map to the
    /// closest version resa knows at or below them.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Exchange2007" | "Exchange2007_SP1" => ServerVersion::Exchange2007_SP1,
            "Exchange2010" | "Exchange2010_SP1" | "Exchange2010_SP2" => ServerVersion::Exchange2010_SP2,
            "Exchange2013" | "Exchange2013_SP1" | "Exchange2015" => ServerVersion::Exchange2013_SP1,
            "Exchange2016" => ServerVersion::Exchange2016,
            s if s.starts_with("V20") => ServerVersion::Exchange2016,
            _ => return None,
        })
    }

    /// Streaming notifications and TimeZoneContext arrived with 2010.
    pub fn has_streaming(self) -> bool {
        self >= ServerVersion::Exchange2010_SP2
    }

    /// The version to ask for from a server's ServerVersionInfo major/minor.
    pub fn from_build(major: u32, minor: u32) -> Self {
        match (major, minor) {
            (0..=13, _) => ServerVersion::Exchange2007_SP1,
            (14, _) => ServerVersion::Exchange2010_SP2,
            (15, 0) => ServerVersion::Exchange2013_SP1,
            _ => ServerVersion::Exchange2016,
        }
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose mailbox a request acts on (ExchangeImpersonation/ConnectingSID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Impersonation {
    PrimarySmtpAddress(String),
    PrincipalName(String),
    Sid(String),
}

/// What goes into `soap:Header` of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub version: ServerVersion,
    pub impersonation: Option<Impersonation>,
    /// A Windows time zone id; Exchange 2010 and later only.
    pub time_zone_context: Option<String>,
}

impl RequestHeader {
    pub fn new(version: ServerVersion) -> Self {
        Self {
            version,
            impersonation: None,
            time_zone_context: None,
        }
    }

    /// Rejects headers the version's schema does not have.
    pub fn check(&self) -> Result<(), EwsError> {
        if self.time_zone_context.is_some() && self.version < ServerVersion::Exchange2010_SP2 {
            return Err(EwsError::Unsupported {
                operation: "TimeZoneContext",
                version: self.version.as_str(),
            });
        }
        Ok(())
    }

    /// Writes each header element standalone (with its own xmlns), so each
    /// can also be schema-checked on its own.
    pub fn write_elements(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        self.check()?;
        w.empty(
            "t:RequestServerVersion",
            &[("xmlns:t", NS_TYPES), ("Version", self.version.as_str())],
        )?;
        if let Some(imp) = &self.impersonation {
            w.start("t:ExchangeImpersonation", &[("xmlns:t", NS_TYPES)])?;
            w.start("t:ConnectingSID", &[])?;
            match imp {
                Impersonation::PrimarySmtpAddress(a) => w.text_elem("t:PrimarySmtpAddress", a)?,
                Impersonation::PrincipalName(a) => w.text_elem("t:PrincipalName", a)?,
                Impersonation::Sid(a) => w.text_elem("t:SID", a)?,
            }
            w.end("t:ConnectingSID")?;
            w.end("t:ExchangeImpersonation")?;
        }
        if let Some(tz) = &self.time_zone_context {
            w.start("t:TimeZoneContext", &[("xmlns:t", NS_TYPES)])?;
            w.empty("t:TimeZoneDefinition", &[("Id", tz)])?;
            w.end("t:TimeZoneContext")?;
        }
        Ok(())
    }

    /// Reads the header of a request (simulator side).
    pub fn read(header: Option<&Element>) -> Result<Self, EwsError> {
        let Some(header) = header else {
            // Exchange treats a request without RequestServerVersion as 2007.
            return Ok(RequestHeader::new(ServerVersion::Exchange2007_SP1));
        };
        let version = match header.child("RequestServerVersion") {
            Some(v) => {
                let s = v.req_attr("Version")?;
                ServerVersion::parse(s).ok_or_else(|| EwsError::malformed(format!("unknown version {s:?}")))?
            }
            None => ServerVersion::Exchange2007_SP1,
        };
        let impersonation = match header
            .child("ExchangeImpersonation")
            .and_then(|e| e.child("ConnectingSID"))
        {
            None => None,
            Some(sid) => {
                if let Some(a) = sid.child_text("PrimarySmtpAddress").or(sid.child_text("SmtpAddress")) {
                    Some(Impersonation::PrimarySmtpAddress(a.to_owned()))
                } else if let Some(a) = sid.child_text("PrincipalName") {
                    Some(Impersonation::PrincipalName(a.to_owned()))
                } else {
                    sid.child_text("SID").map(|a| Impersonation::Sid(a.to_owned()))
                }
            }
        };
        let time_zone_context = header
            .child("TimeZoneContext")
            .and_then(|c| c.child("TimeZoneDefinition"))
            .and_then(|d| d.attr("Id"))
            .map(str::to_owned);
        Ok(Self {
            version,
            impersonation,
            time_zone_context,
        })
    }
}

/// `t:ServerVersionInfo` from a response header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerVersionInfo {
    pub major_version: u32,
    pub minor_version: u32,
    pub major_build_number: u32,
    pub minor_build_number: u32,
    /// The schema version string ("Exchange2010_SP2", "V2017_07_11"), absent on 2007 RTM.
    pub version: Option<String>,
}

impl ServerVersionInfo {
    /// The request version to use with this server.
    pub fn server_version(&self) -> ServerVersion {
        self.version
            .as_deref()
            .and_then(ServerVersion::parse)
            .unwrap_or_else(|| ServerVersion::from_build(self.major_version, self.minor_version))
    }
}

impl Wire for ServerVersionInfo {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError> {
        let (a, b, c, d) = (
            self.major_version.to_string(),
            self.minor_version.to_string(),
            self.major_build_number.to_string(),
            self.minor_build_number.to_string(),
        );
        let mut attrs = vec![
            ("xmlns:t", NS_TYPES),
            ("MajorVersion", a.as_str()),
            ("MinorVersion", b.as_str()),
            ("MajorBuildNumber", c.as_str()),
            ("MinorBuildNumber", d.as_str()),
        ];
        if let Some(v) = &self.version {
            attrs.push(("Version", v));
        }
        w.empty("t:ServerVersionInfo", &attrs)
    }

    fn read(el: &Element) -> Result<Self, EwsError> {
        let num = |n: &str| -> Result<u32, EwsError> {
            el.attr(n)
                .unwrap_or("0")
                .parse()
                .map_err(|_| EwsError::malformed(format!("ServerVersionInfo {n} not a number")))
        };
        Ok(Self {
            major_version: num("MajorVersion")?,
            minor_version: num("MinorVersion")?,
            major_build_number: num("MajorBuildNumber")?,
            minor_build_number: num("MinorBuildNumber")?,
            version: el.attr("Version").map(str::to_owned),
        })
    }
}

/// An EWS operation: a request type tied to its response type. The request's
/// [`Wire`] impl writes and reads the payload element (`m:GetItem`), the
/// response's the response payload (`m:GetItemResponse`).
pub trait Operation: Wire {
    type Response: Wire + ResponseStatus;
    /// The operation name, also the SOAPAction suffix.
    const NAME: &'static str;
    /// Whether sending it twice is harmless. Operations that send mail or
    /// change items are not, and are not retried after an interrupted
    /// exchange whose outcome is unknown.
    const IDEMPOTENT: bool = true;

    /// Rejects a request that the version's schema cannot express. The
    /// default accepts every version resa knows.
    fn check_version(&self, _version: ServerVersion) -> Result<(), EwsError> {
        Ok(())
    }
}

/// Lets the client see, in a parsed response, a per-message throttling
/// error (ErrorServerBusy, ErrorTooManyObjectsOpened...) worth retrying
/// the whole request for.
pub trait ResponseStatus {
    /// The first transient error among the response messages, if every
    /// message failed transiently; partial successes are left to the caller.
    fn transient_error(&self) -> Option<EwsError> {
        None
    }
}

/// Serializes a request: envelope, header, payload.
pub fn write_request<O: Operation>(op: &O, header: &RequestHeader) -> Result<Vec<u8>, EwsError> {
    op.check_version(header.version)?;
    let mut w = XmlWriter::new(header.version);
    w.decl()?;
    w.start("soap:Envelope", &[("xmlns:soap", NS_SOAP)])?;
    w.start("soap:Header", &[])?;
    header.write_elements(&mut w)?;
    w.end("soap:Header")?;
    w.start("soap:Body", &[])?;
    op.write(&mut w)?;
    w.end("soap:Body")?;
    w.end("soap:Envelope")?;
    Ok(w.into_bytes())
}

/// Serializes only the payload (the Body's first child), standalone.
pub fn write_payload<T: Wire>(value: &T, version: ServerVersion) -> Result<Vec<u8>, EwsError> {
    let mut w = XmlWriter::new(version);
    value.write(&mut w)?;
    Ok(w.into_bytes())
}

/// A parsed envelope: header and body payload.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub header: Option<Element>,
    pub payload: Element,
}

/// Splits an envelope into header and the Body's first child.
pub fn read_envelope(bytes: &[u8], max_bytes: usize) -> Result<Envelope, EwsError> {
    let root = xml::parse(bytes, max_bytes)?;
    if root.name != "Envelope" {
        return Err(EwsError::malformed(format!(
            "root is <{}>, not a SOAP Envelope",
            root.name
        )));
    }
    let body = root.req_child("Body")?;
    let payload = body
        .first_child()
        .cloned()
        .ok_or_else(|| EwsError::malformed("empty SOAP Body"))?;
    Ok(Envelope {
        header: root.child("Header").cloned(),
        payload,
    })
}

/// Reads a request (simulator side): its header and its payload.
pub fn read_request<O: Operation>(bytes: &[u8], max_bytes: usize) -> Result<(RequestHeader, O), EwsError> {
    let env = read_envelope(bytes, max_bytes)?;
    let header = RequestHeader::read(env.header.as_ref())?;
    if env.payload.name != O::NAME {
        return Err(EwsError::malformed(format!(
            "expected <{}>, found <{}>",
            O::NAME,
            env.payload.name
        )));
    }
    Ok((header, O::read(&env.payload)?))
}

/// A SOAP fault, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `faultcode` as sent (`soap:Client`, `a:ErrorServerBusy`).
    pub fault_code: String,
    pub fault_string: String,
    pub response_code: ResponseCode,
    pub message: Option<String>,
    pub back_off: Option<Duration>,
}

impl Fault {
    pub fn read(el: &Element) -> Self {
        let fault_code = el.child_text("faultcode").unwrap_or_default().to_owned();
        let fault_string = el.child_text("faultstring").unwrap_or_default().to_owned();
        let detail = el.child("detail");
        let response_code = match detail.and_then(|d| d.child_text("ResponseCode")) {
            Some(code) => ResponseCode::parse(code),
            None if fault_code.contains(":Error") || fault_code.starts_with("Error") => {
                ResponseCode::parse(&fault_code)
            }
            // Exchange 2007 reports mailbox rights as a bare .NET exception.
            None if fault_string.contains("AccessDenied") => ResponseCode::ErrorAccessDenied,
            None => ResponseCode::Other(fault_code.clone()),
        };
        let message = detail.and_then(|d| d.child_text("Message")).map(str::to_owned);
        let back_off = detail.and_then(|d| d.child("MessageXml")).and_then(back_off_of);
        Self {
            fault_code,
            fault_string,
            response_code,
            message,
            back_off,
        }
    }

    pub fn into_error(self) -> EwsError {
        EwsError::Fault {
            code: self.response_code,
            message: self.message.unwrap_or(self.fault_string),
            fault_code: self.fault_code,
            back_off: self.back_off,
        }
    }

    /// Writes a whole fault envelope (simulator side), shaped like Exchange's.
    pub fn write_envelope(&self, info: Option<&ServerVersionInfo>) -> Result<Vec<u8>, EwsError> {
        const NS_ERRORS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";
        let mut w = XmlWriter::new(ServerVersion::Exchange2016);
        w.decl()?;
        w.start("s:Envelope", &[("xmlns:s", NS_SOAP)])?;
        if let Some(info) = info {
            w.start("s:Header", &[])?;
            info.write(&mut w)?;
            w.end("s:Header")?;
        }
        w.start("s:Body", &[])?;
        w.start("s:Fault", &[])?;
        w.text_elem_attrs("faultcode", &[("xmlns:a", NS_TYPES)], &self.fault_code)?;
        w.text_elem("faultstring", &self.fault_string)?;
        w.start("detail", &[])?;
        w.text_elem_attrs("e:ResponseCode", &[("xmlns:e", NS_ERRORS)], self.response_code.as_str())?;
        w.text_elem_attrs(
            "e:Message",
            &[("xmlns:e", NS_ERRORS)],
            self.message.as_deref().unwrap_or(&self.fault_string),
        )?;
        if let Some(b) = self.back_off {
            w.start("t:MessageXml", &[("xmlns:t", NS_TYPES)])?;
            w.text_elem_attrs(
                "t:Value",
                &[("Name", "BackOffMilliseconds")],
                &b.as_millis().to_string(),
            )?;
            w.end("t:MessageXml")?;
        }
        w.end("detail")?;
        w.end("s:Fault")?;
        w.end("s:Body")?;
        w.end("s:Envelope")?;
        Ok(w.into_bytes())
    }
}

fn back_off_of(message_xml: &Element) -> Option<Duration> {
    message_xml
        .children_named("Value")
        .find(|v| v.attr("Name") == Some("BackOffMilliseconds"))
        .and_then(|v| v.text().parse::<u64>().ok())
        .map(Duration::from_millis)
}

/// Reads a response envelope: the ServerVersionInfo and the typed payload.
/// A SOAP fault becomes `EwsError::Fault`.
pub fn read_response<O: Operation>(
    bytes: &[u8],
    max_bytes: usize,
) -> Result<(Option<ServerVersionInfo>, O::Response), EwsError> {
    let env = read_envelope(bytes, max_bytes)?;
    let info = env
        .header
        .as_ref()
        .and_then(|h| h.child("ServerVersionInfo"))
        .map(ServerVersionInfo::read)
        .transpose()?;
    if env.payload.name == "Fault" {
        return Err(Fault::read(&env.payload).into_error());
    }
    Ok((info, O::Response::read(&env.payload)?))
}

/// Writes a response envelope (simulator side).
pub fn write_response<R: Wire>(
    resp: &R,
    info: Option<&ServerVersionInfo>,
    version: ServerVersion,
) -> Result<Vec<u8>, EwsError> {
    let mut w = XmlWriter::new(version);
    w.decl()?;
    w.start("s:Envelope", &[("xmlns:s", NS_SOAP)])?;
    if let Some(info) = info {
        w.start("s:Header", &[])?;
        info.write(&mut w)?;
        w.end("s:Header")?;
    }
    w.start("s:Body", &[])?;
    resp.write(&mut w)?;
    w.end("s:Body")?;
    w.end("s:Envelope")?;
    Ok(w.into_bytes())
}

/// `ResponseClass` of a response message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseClass {
    #[default]
    Success,
    Warning,
    Error,
}

impl ResponseClass {
    fn as_str(self) -> &'static str {
        match self {
            ResponseClass::Success => "Success",
            ResponseClass::Warning => "Warning",
            ResponseClass::Error => "Error",
        }
    }
}

/// The operation-specific part of a response message, read from and written
/// into the `m:XxxResponseMessage` element after the common fields.
pub trait MessageContent: Default {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError>;
    fn read(msg: &Element) -> Result<Self, EwsError>;
    /// What an error message carries in place of content; some schemas
    /// require an empty element (`<m:Items/>`) there.
    fn write_for_error(w: &mut XmlWriter) -> Result<(), EwsError> {
        let _ = w;
        Ok(())
    }
}

impl MessageContent for () {
    fn write(&self, _w: &mut XmlWriter) -> Result<(), EwsError> {
        Ok(())
    }
    fn read(_msg: &Element) -> Result<Self, EwsError> {
        Ok(())
    }
}

/// One `m:XxxResponseMessage`: the status fields and the content.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResponseMessage<C> {
    pub class: ResponseClass,
    pub code: ResponseCode,
    pub message_text: Option<String>,
    /// `MessageXml/Value[@Name="BackOffMilliseconds"]`, when present.
    pub back_off: Option<Duration>,
    pub content: C,
}

impl<C: MessageContent> ResponseMessage<C> {
    pub fn success(content: C) -> Self {
        Self {
            class: ResponseClass::Success,
            code: ResponseCode::NoError,
            message_text: None,
            back_off: None,
            content,
        }
    }

    pub fn error(code: ResponseCode, text: impl Into<String>) -> Self {
        Self {
            class: ResponseClass::Error,
            code,
            message_text: Some(text.into()),
            back_off: None,
            content: C::default(),
        }
    }

    pub fn read(el: &Element) -> Result<Self, EwsError> {
        let class = match el.attr("ResponseClass") {
            Some("Error") => ResponseClass::Error,
            Some("Warning") => ResponseClass::Warning,
            _ => ResponseClass::Success,
        };
        let code = el
            .child_text("ResponseCode")
            .map(ResponseCode::parse)
            .unwrap_or(ResponseCode::NoError);
        // An error message usually carries no content, but some do
        // (ResolveNames lists the candidates of an ambiguous name): read it
        // when it parses, and never let it hide the error code.
        let content = if class == ResponseClass::Error {
            C::read(el).unwrap_or_default()
        } else {
            C::read(el)?
        };
        Ok(Self {
            class,
            code,
            message_text: el.child_text("MessageText").map(str::to_owned),
            back_off: el.child("MessageXml").and_then(back_off_of),
            content,
        })
    }

    pub fn write(&self, w: &mut XmlWriter, name: &str) -> Result<(), EwsError> {
        w.start(name, &[("ResponseClass", self.class.as_str())])?;
        if let Some(t) = &self.message_text {
            w.text_elem("m:MessageText", t)?;
        }
        w.text_elem("m:ResponseCode", self.code.as_str())?;
        w.text_elem("m:DescriptiveLinkKey", "0")?;
        if let Some(b) = self.back_off {
            w.start("m:MessageXml", &[])?;
            w.text_elem_attrs(
                "t:Value",
                &[("Name", "BackOffMilliseconds")],
                &b.as_millis().to_string(),
            )?;
            w.end("m:MessageXml")?;
        }
        if self.class == ResponseClass::Error {
            C::write_for_error(w)?;
        } else {
            self.content.write(w)?;
        }
        w.end(name)
    }

    /// The content, or the message's error as an `EwsError::Response`.
    pub fn into_result(self) -> Result<C, EwsError> {
        if self.class == ResponseClass::Error {
            return Err(EwsError::Response {
                message: self.message_text.unwrap_or_default(),
                code: self.code,
                back_off: self.back_off,
            });
        }
        Ok(self.content)
    }
}

/// The common response payload: `m:XxxResponse/m:ResponseMessages/*`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResponseMessages<C> {
    pub messages: Vec<ResponseMessage<C>>,
}

impl<C: MessageContent> ResponseMessages<C> {
    pub fn read_payload(el: &Element) -> Result<Self, EwsError> {
        let list = el.req_child("ResponseMessages")?;
        let messages = list
            .children
            .iter()
            .map(ResponseMessage::read)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { messages })
    }

    pub fn write_payload(&self, w: &mut XmlWriter, payload: &str, message: &str) -> Result<(), EwsError> {
        w.start_payload(payload, &[])?;
        w.start("m:ResponseMessages", &[])?;
        for m in &self.messages {
            m.write(w, message)?;
        }
        w.end("m:ResponseMessages")?;
        w.end(payload)
    }

    /// See [`ResponseStatus::transient_error`].
    pub fn transient_error(&self) -> Option<EwsError> {
        let first = self.messages.first()?;
        let all_transient = self
            .messages
            .iter()
            .all(|m| m.class == ResponseClass::Error && m.code.is_transient());
        all_transient.then(|| EwsError::Response {
            code: first.code.clone(),
            message: first.message_text.clone().unwrap_or_default(),
            back_off: first.back_off,
        })
    }

    /// The single message of a one-item request, as a result.
    pub fn into_single(self) -> Result<C, EwsError> {
        self.messages
            .into_iter()
            .next()
            .ok_or_else(|| EwsError::malformed("no response message"))?
            .into_result()
    }
}

/// Declares a response payload type `$resp` = `ResponseMessages<$content>`
/// with its element names.
macro_rules! response_payload {
    ($resp:ident, $content:ty, $payload:literal, $message:literal) => {
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct $resp(pub $crate::ews::soap::ResponseMessages<$content>);

        impl $crate::ews::xml::Wire for $resp {
            fn write(&self, w: &mut $crate::ews::xml::XmlWriter) -> Result<(), $crate::ews::error::EwsError> {
                self.0.write_payload(w, $payload, $message)
            }
            fn read(el: &$crate::ews::xml::Element) -> Result<Self, $crate::ews::error::EwsError> {
                $crate::ews::soap::ResponseMessages::read_payload(el).map($resp)
            }
        }

        impl $crate::ews::soap::ResponseStatus for $resp {
            fn transient_error(&self) -> Option<$crate::ews::error::EwsError> {
                self.0.transient_error()
            }
        }

        impl $resp {
            pub fn into_single(self) -> Result<$content, $crate::ews::error::EwsError> {
                self.0.into_single()
            }
        }
    };
}
pub(crate) use response_payload;

/// Any response payload read only for its status (operations resa does not
/// model, such as CreateFolder, still report errors in this shape).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GenericResponse(pub ResponseMessages<()>);

impl GenericResponse {
    pub fn read(el: &Element) -> Result<Self, EwsError> {
        ResponseMessages::read_payload(el).map(GenericResponse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zone_context_is_refused_on_2007() {
        let mut h = RequestHeader::new(ServerVersion::Exchange2007_SP1);
        h.time_zone_context = Some("Romance Standard Time".into());
        assert!(matches!(h.check(), Err(EwsError::Unsupported { .. })));
        h.version = ServerVersion::Exchange2010_SP2;
        assert!(h.check().is_ok());
    }

    #[test]
    fn header_round_trips() {
        let h = RequestHeader {
            version: ServerVersion::Exchange2013_SP1,
            impersonation: Some(Impersonation::PrimarySmtpAddress("salle@x.fr".into())),
            time_zone_context: Some("Romance Standard Time".into()),
        };
        let mut w = XmlWriter::new(h.version);
        w.start("soap:Header", &[("xmlns:soap", NS_SOAP)]).ok();
        h.write_elements(&mut w).ok();
        w.end("soap:Header").ok();
        let el = xml::parse(&w.into_bytes(), 1 << 20).ok();
        let back = RequestHeader::read(el.as_ref()).ok();
        assert_eq!(back, Some(h));
    }
}
