//! The XML layer under every EWS wire type: a tolerant reader that builds a
//! small element tree, and a writer that emits events through quick-xml.
//!
//! The reader keys elements and attributes by local name only, because
//! servers differ in prefixes (`t:`, `m:`, `a:`, a default namespace) while
//! EWS never reuses a local name with two meanings in one place. It refuses
//! DTDs (no entity expansion at all), caps input size and nesting depth, and
//! keeps unknown elements in the tree so that callers simply ignore them.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};

use super::error::EwsError;
use super::soap::ServerVersion;

/// The EWS messages namespace (prefix `m:` in what we write).
pub const NS_MESSAGES: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
/// The EWS types namespace (prefix `t:` in what we write).
pub const NS_TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
/// The SOAP 1.1 envelope namespace.
pub const NS_SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// Default cap on a response body: far above any sane EWS answer for the
/// batch sizes resa asks for, and low enough to bound memory per request.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;
/// Deeper nesting than this is not EWS; it is an attack or garbage.
const MAX_DEPTH: usize = 128;

/// One parsed element: local name, attributes by local name, child elements
/// and the concatenated character data directly inside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with this local name, in document order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first child element, whatever its name (a SOAP Body's payload).
    pub fn first_child(&self) -> Option<&Element> {
        self.children.first()
    }

    /// An attribute by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The trimmed text of this element.
    pub fn text(&self) -> &str {
        self.text.trim()
    }

    /// The trimmed text of a child, when the child exists.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(Element::text)
    }

    /// A required attribute, with an error naming the element when missing.
    pub fn req_attr(&self, name: &str) -> Result<&str, EwsError> {
        self.attr(name)
            .ok_or_else(|| EwsError::malformed(format!("<{}> lacks attribute {name}", self.name)))
    }

    /// A required child, with an error naming the parent when missing.
    pub fn req_child(&self, name: &str) -> Result<&Element, EwsError> {
        self.child(name)
            .ok_or_else(|| EwsError::malformed(format!("<{}> lacks <{name}>", self.name)))
    }

    /// A child's text parsed with `FromStr`, `None` when the child is absent.
    pub fn child_parse<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, EwsError> {
        match self.child_text(name) {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| EwsError::malformed(format!("<{name}> in <{}> has a bad value {s:?}", self.name))),
        }
    }

    /// A child's boolean text (`true`/`false`/`1`/`0`, as xs:boolean allows).
    pub fn child_bool(&self, name: &str) -> Result<Option<bool>, EwsError> {
        match self.child_text(name) {
            None => Ok(None),
            Some(s) => parse_bool(s).map(Some),
        }
    }
}

/// Parses an xs:boolean lexical value.
pub fn parse_bool(s: &str) -> Result<bool, EwsError> {
    match s {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(EwsError::malformed(format!("bad boolean {other:?}"))),
    }
}

fn local(name: &[u8]) -> String {
    let local = match name.iter().rposition(|b| *b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    };
    String::from_utf8_lossy(local).into_owned()
}

fn element_from_start(start: &BytesStart<'_>) -> Result<Element, EwsError> {
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| EwsError::malformed(format!("bad attribute: {e}")))?;
        let key = attr.key.as_ref();
        // Namespace declarations carry no data for us.
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            continue;
        }
        let value = attr
            .unescape_value()
            .map_err(|e| EwsError::malformed(format!("bad attribute value: {e}")))?;
        attrs.push((local(key), value.into_owned()));
    }
    Ok(Element {
        name: local(start.name().as_ref()),
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

/// Parses a whole document into its root element.
///
/// Refuses input over `max_bytes`, any DTD, undefined entities, nesting over
/// a fixed depth, and documents with no root or trailing roots.
pub fn parse(input: &[u8], max_bytes: usize) -> Result<Element, EwsError> {
    if input.len() > max_bytes {
        return Err(EwsError::TooLarge { limit: max_bytes });
    }
    let mut reader = Reader::from_reader(input);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| EwsError::malformed(format!("XML: {e}")))?;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(EwsError::malformed("content after the root element"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(EwsError::malformed("XML nested too deeply"));
                }
                stack.push(element_from_start(&start)?);
            }
            Event::Empty(start) => {
                let el = element_from_start(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err(EwsError::malformed("content after the root element")),
                }
            }
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return Err(EwsError::malformed("unbalanced end tag"));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t
                    .xml_content()
                    .map_err(|e| EwsError::malformed(format!("XML text: {e}")))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                } else if !s.trim().is_empty() {
                    return Err(EwsError::malformed("text outside the root element"));
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| EwsError::malformed(format!("XML char ref: {e}")))?
                        .map(String::from)
                } else {
                    let name = r
                        .decode()
                        .map_err(|e| EwsError::malformed(format!("XML entity: {e}")))?;
                    quick_xml::escape::resolve_predefined_entity(&name).map(str::to_owned)
                };
                let Some(s) = resolved else {
                    // Only the five predefined entities exist without a DTD.
                    return Err(EwsError::malformed("undefined XML entity"));
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::DocType(_) => {
                return Err(EwsError::malformed("DTDs are not accepted"));
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(EwsError::malformed("document ends inside an element"));
    }
    root.ok_or_else(|| EwsError::malformed("document has no root element"))
}

/// Emits XML for wire types. Names are written with their prefix (`m:`, `t:`),
/// and the writer knows the target server version so that a type can leave
/// out what that version's schema does not have.
pub struct XmlWriter {
    inner: Writer<Vec<u8>>,
    pub version: ServerVersion,
}

fn werr(e: std::io::Error) -> EwsError {
    EwsError::malformed(format!("XML write: {e}"))
}

impl XmlWriter {
    pub fn new(version: ServerVersion) -> Self {
        Self {
            inner: Writer::new(Vec::new()),
            version,
        }
    }

    /// Writes the `<?xml ...?>` declaration.
    pub fn decl(&mut self) -> Result<(), EwsError> {
        self.inner
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
            .map_err(werr)
    }

    pub fn start(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<(), EwsError> {
        let mut s = BytesStart::new(name);
        for (k, v) in attrs {
            s.push_attribute((*k, *v));
        }
        self.inner.write_event(Event::Start(s)).map_err(werr)
    }

    pub fn end(&mut self, name: &str) -> Result<(), EwsError> {
        self.inner.write_event(Event::End(BytesEnd::new(name))).map_err(werr)
    }

    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<(), EwsError> {
        let mut s = BytesStart::new(name);
        for (k, v) in attrs {
            s.push_attribute((*k, *v));
        }
        self.inner.write_event(Event::Empty(s)).map_err(werr)
    }

    /// Escaped character data.
    pub fn text(&mut self, text: &str) -> Result<(), EwsError> {
        self.inner.write_event(Event::Text(BytesText::new(text))).map_err(werr)
    }

    /// `<name attrs>text</name>`.
    pub fn text_elem_attrs(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> Result<(), EwsError> {
        self.start(name, attrs)?;
        self.text(text)?;
        self.end(name)
    }

    /// `<name>text</name>`.
    pub fn text_elem(&mut self, name: &str, text: &str) -> Result<(), EwsError> {
        self.text_elem_attrs(name, &[], text)
    }

    /// `<name>text</name>` when there is a value.
    pub fn opt_text<T: std::fmt::Display>(&mut self, name: &str, value: Option<&T>) -> Result<(), EwsError> {
        match value {
            Some(v) => self.text_elem(name, &v.to_string()),
            None => Ok(()),
        }
    }

    /// `<name>true|false</name>` when there is a value.
    pub fn opt_bool(&mut self, name: &str, value: Option<bool>) -> Result<(), EwsError> {
        match value {
            Some(v) => self.text_elem(name, if v { "true" } else { "false" }),
            None => Ok(()),
        }
    }

    /// Opens the root of an operation payload, declaring both EWS namespaces
    /// on it so that the payload stands alone (for schema checks and for a
    /// simulator that lifts it out of the envelope).
    pub fn start_payload(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<(), EwsError> {
        let mut all: Vec<(&str, &str)> = vec![("xmlns:m", NS_MESSAGES), ("xmlns:t", NS_TYPES)];
        all.extend_from_slice(attrs);
        self.start(name, &all)
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.inner.into_inner()
    }
}

/// Something that can be written as XML and read back from an [`Element`]:
/// every wire type implements it so that the client and a simulator share
/// one definition of the wire format.
pub trait Wire: Sized {
    fn write(&self, w: &mut XmlWriter) -> Result<(), EwsError>;
    fn read(el: &Element) -> Result<Self, EwsError>;
}

/// Formats a UTC time the way EWS writes it (`2026-03-29T08:00:00Z`).
pub fn fmt_datetime(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses an xs:dateTime; a value without offset is taken as UTC, which is
/// what Exchange means when it omits the zone.
pub fn parse_datetime(s: &str) -> Result<chrono::DateTime<chrono::Utc>, EwsError> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|n| n.and_utc())
        .map_err(|_| EwsError::malformed(format!("bad dateTime {s:?}")))
}

/// Parses an xs:date, dropping any zone suffix (`2026-03-29Z`,
/// `2026-03-29-07:00`): recurrence dates are calendar days.
pub fn parse_date(s: &str) -> Result<chrono::NaiveDate, EwsError> {
    let s = s.trim();
    let head = s.get(..10).unwrap_or(s);
    chrono::NaiveDate::parse_from_str(head, "%Y-%m-%d").map_err(|_| EwsError::malformed(format!("bad date {s:?}")))
}

impl Element {
    /// A child's xs:dateTime, `None` when absent.
    pub fn child_datetime(&self, name: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, EwsError> {
        self.child_text(name).map(parse_datetime).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_do_not_matter() {
        let a = parse(
            br#"<a:X xmlns:a="urn:a"><b:Y xmlns:b="urn:b" b:k="v">t &amp; &#x41;</b:Y></a:X>"#,
            1024,
        );
        let a = a.ok();
        let y = a.as_ref().and_then(|x| x.child("Y"));
        assert_eq!(y.map(Element::text), Some("t & A"));
        assert_eq!(y.and_then(|y| y.attr("k")), Some("v"));
    }

    #[test]
    fn byte_order_mark_and_declaration_are_accepted() {
        let doc = b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<x a=\"1\"/>";
        assert_eq!(parse(doc, 1024).ok().map(|e| e.name), Some("x".to_owned()));
    }

    #[test]
    fn dtd_entities_and_oversize_are_refused() {
        let dtd = br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>"#;
        assert!(parse(dtd, 1024).is_err());
        assert!(parse(b"<x>&a;</x>", 1024).is_err());
        assert!(matches!(parse(b"<x></x>", 3), Err(EwsError::TooLarge { .. })));
        assert!(parse(b"<x><y></x>", 1024).is_err());
        assert!(parse(b"", 1024).is_err());
        assert!(parse(b"<x/><y/>", 1024).is_err());
        let deep = "<a>".repeat(200) + &"</a>".repeat(200);
        assert!(parse(deep.as_bytes(), 1 << 20).is_err());
    }
}
