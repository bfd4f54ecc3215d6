//! A small XML writer for the Veeam representations: the namespace and the XSD element order
//! are explicit at each call site. Text and attribute values are escaped by quick-xml.

use quick_xml::escape::escape;

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
                self.buf.push_str(&escape(*value));
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
