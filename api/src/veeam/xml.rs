//! A small XML writer for the Veeam representations: the namespace and the XSD element order
//! are explicit at each call site. Text and attribute values are escaped by quick-xml, and
//! characters that XML 1.0 cannot carry at all (control characters, U+FFFE, U+FFFF) are replaced
//! by U+FFFD, so every document is well-formed whatever a client put into an id or a name.

use std::borrow::Cow;

pub const NAMESPACE: &str = "http://www.veeam.com/ent/v1.0";

pub struct Xml {
    buf: String,
    root: bool,
}

impl Xml {
    pub fn document() -> Self {
        Self { buf: String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"), root: true }
    }

    fn start_tag(&mut self, name: &str, attrs: &[(&str, Option<&str>)]) {
        self.buf.push('<');
        self.buf.push_str(name);
        if std::mem::take(&mut self.root) {
            self.buf.push_str(" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns=\"");
            self.buf.push_str(NAMESPACE);
            self.buf.push('"');
        }
        for (key, value) in attrs {
            if let Some(value) = value {
                self.buf.push(' ');
                self.buf.push_str(key);
                self.buf.push_str("=\"");
                self.buf.push_str(&escape(value));
                self.buf.push('"');
            }
        }
    }

    /// `<name attrs>` … children written by `body` … `</name>`.
    pub fn element(&mut self, name: &str, attrs: &[(&str, Option<&str>)], body: impl FnOnce(&mut Self)) {
        self.start_tag(name, attrs);
        self.buf.push('>');
        body(self);
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
    }

    /// `<name attrs />`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, Option<&str>)]) {
        self.start_tag(name, attrs);
        self.buf.push_str(" />");
    }

    /// `<name>text</name>`; nothing when `text` is `None`.
    pub fn text(&mut self, name: &str, text: Option<&str>) {
        if let Some(text) = text {
            self.element(name, &[], |x| x.buf.push_str(&escape(text)));
        }
    }

    pub fn finish(self) -> String {
        self.buf
    }
}

/// Escapes markup, and replaces what XML 1.0 forbids even escaped with U+FFFD.
fn escape(text: &str) -> Cow<'_, str> {
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}');
    if text.chars().all(allowed) {
        return quick_xml::escape::escape(text);
    }
    let cleaned: String = text.chars().map(|c| if allowed(c) { c } else { '\u{FFFD}' }).collect();
    Cow::Owned(quick_xml::escape::escape(cleaned.as_str()).into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn characters_xml_cannot_carry_are_replaced_and_markup_is_escaped() {
        assert_eq!(super::escape("a\u{1}b\u{1b}[0m\u{FFFF}<&>\t"), "a\u{FFFD}b\u{FFFD}[0m\u{FFFD}&lt;&amp;&gt;\t");
        assert_eq!(super::escape("plain"), "plain");
    }
}
