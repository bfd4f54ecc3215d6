//! Reading XML responses in tests.

use quick_xml::Reader;
use quick_xml::events::Event;

/// The text of the first element named `name` (entity references resolved).
pub fn text(xml: &str, name: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) if e.local_name().as_ref() == name.as_bytes() => {
                let raw = reader.read_text(e.name()).ok()?;
                return quick_xml::escape::unescape(&raw).ok().map(|t| t.into_owned());
            }
            Event::Empty(e) if e.local_name().as_ref() == name.as_bytes() => return Some(String::new()),
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// Attribute `attr` of the first element named `name`.
pub fn attr(xml: &str, name: &str, attr: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == name.as_bytes() => {
                return e
                    .attributes()
                    .filter_map(Result::ok)
                    .find(|a| a.key.as_ref() == attr.as_bytes())
                    .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()));
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// Every element name in document order (to check XSD order).
pub fn element_names(xml: &str) -> Vec<String> {
    let mut reader = Reader::from_str(xml);
    let mut names = Vec::new();
    while let Ok(event) = reader.read_event() {
        match event {
            Event::Start(e) | Event::Empty(e) => {
                names.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned())
            }
            Event::Eof => break,
            _ => {}
        }
    }
    names
}

/// The root element's namespace declaration.
pub fn root_namespace(xml: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) | Event::Empty(e) => {
                return e
                    .attributes()
                    .filter_map(Result::ok)
                    .find(|a| a.key.as_ref() == b"xmlns")
                    .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()));
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}
