//! A bounded XML reader for Cx User-Data (TS 29.228 §7.7, Annex E): builds a small
//! element tree with quick-xml, refusing documents deeper, larger or with more elements
//! than an IMSSubscription needs. Attributes and namespace prefixes are ignored (the
//! CxDataType schema carries everything in element text); DOCTYPE is refused, so no
//! entity beyond XML's five predefined ones and character references is expanded.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Element nesting accepted at most (IMSSubscription needs 7).
pub const MAX_DEPTH: usize = 16;
/// Elements accepted in one document at most.
pub const MAX_ELEMENTS: usize = 20_000;
/// Bytes of text accepted in one element at most.
pub const MAX_TEXT: usize = 8 * 1024;

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed XML (or a DOCTYPE).
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// Past one of the limits above (named).
    #[error("XML document exceeds the {0} limit")]
    Limit(&'static str),
}

/// One element: its local name, its text (character data and CDATA, unescaped, not
/// trimmed) and its child elements in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name (any namespace prefix removed).
    pub name: String,
    /// Concatenated text directly inside the element.
    pub text: String,
    /// Child elements.
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`, in order.
    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the first child named `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }
}

/// Reads `text` into its root element.
pub fn parse(text: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.expand_empty_elements = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    loop {
        let event = reader.read_event().map_err(|e| {
            XmlError::Malformed(format!("at byte {}: {e}", reader.error_position()))
        })?;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(XmlError::Malformed("more than one root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::Limit("element depth"));
                }
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(XmlError::Limit("element count"));
                }
                let name = std::str::from_utf8(start.local_name().into_inner())
                    .map_err(|_| XmlError::Malformed("element name is not UTF-8".into()))?;
                stack.push(Element {
                    name: name.to_owned(),
                    ..Element::default()
                });
            }
            Event::End(_) => {
                // check_end_names guarantees a matching open element.
                let Some(done) = stack.pop() else {
                    return Err(XmlError::Malformed("unbalanced end tag".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .map_err(|e| XmlError::Malformed(e.to_string()))?;
                append_text(&mut stack, &text)?;
            }
            Event::CData(c) => {
                let text = std::str::from_utf8(&c)
                    .map_err(|_| XmlError::Malformed("CDATA is not UTF-8".into()))?;
                append_text(&mut stack, text)?;
            }
            Event::DocType(_) => {
                return Err(XmlError::Malformed("DOCTYPE is not accepted".into()));
            }
            Event::Empty(_) | Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed(
            "unclosed element at end of document".into(),
        ));
    }
    root.ok_or_else(|| XmlError::Malformed("no root element".into()))
}

/// Appends text to the open element; outside the root only whitespace is allowed.
fn append_text(stack: &mut [Element], text: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(open) => {
            if open.text.len() + text.len() > MAX_TEXT {
                return Err(XmlError::Limit("text length"));
            }
            open.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(XmlError::Malformed("text outside the root element".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_tree_with_escapes_cdata_prefixes_and_empty_elements() {
        let doc = "<?xml version=\"1.0\"?><!-- c --><cx:A xmlns:cx=\"urn:x\">\
                   <B> a&amp;b&#x21; </B><C/><B><![CDATA[<raw>]]></B></cx:A>\n";
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "A");
        let names: Vec<&str> = root.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["B", "C", "B"]);
        assert_eq!(root.child_text("B"), Some("a&b!"));
        assert_eq!(root.children("B").nth(1).unwrap().text, "<raw>");
        assert_eq!(root.child("C").unwrap().text, "");
    }

    #[test]
    fn refuses_what_is_not_one_well_formed_document() {
        for doc in [
            "",
            "text",
            "<a><b></a>",
            "<a></a><b></b>",
            "<a>&unknown;</a>",
            "<a>",
            "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
        ] {
            assert!(
                matches!(parse(doc), Err(XmlError::Malformed(_))),
                "{doc:?} accepted"
            );
        }
    }

    #[test]
    fn enforces_depth_element_and_text_limits() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(&deep), Err(XmlError::Limit("element depth")));
        let wide = format!("<a>{}</a>", "<b/>".repeat(MAX_ELEMENTS));
        assert_eq!(parse(&wide), Err(XmlError::Limit("element count")));
        let long = format!("<a>{}</a>", "x".repeat(MAX_TEXT + 1));
        assert_eq!(parse(&long), Err(XmlError::Limit("text length")));
        let ok = format!("<a>{}</a>", "x".repeat(MAX_TEXT));
        assert_eq!(parse(&ok).unwrap().text.len(), MAX_TEXT);
    }
}
