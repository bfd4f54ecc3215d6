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

/// Checks that `xml` is a well-formed document: one root, matching tags, valid escapes, and no
/// character that XML 1.0 forbids.
pub fn well_formed(xml: &str) -> Result<(), String> {
    if let Some(bad) =
        xml.chars().find(|&c| !(matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')))
    {
        return Err(format!("forbidden character U+{:04X}", u32::from(bad)));
    }
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let (mut depth, mut roots) = (0usize, 0usize);
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => {
                roots += usize::from(depth == 0);
                depth += 1;
                for attr in e.attributes() {
                    attr.map_err(|e| e.to_string())?.unescape_value().map_err(|e| e.to_string())?;
                }
            }
            Event::Empty(e) => {
                roots += usize::from(depth == 0);
                for attr in e.attributes() {
                    attr.map_err(|e| e.to_string())?.unescape_value().map_err(|e| e.to_string())?;
                }
            }
            Event::End(_) => depth = depth.checked_sub(1).ok_or("unbalanced end tag")?,
            Event::Text(t) => {
                t.decode().map_err(|e| e.to_string())?;
                quick_xml::escape::unescape(&String::from_utf8_lossy(&t)).map_err(|e| e.to_string())?;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match (depth, roots) {
        (0, 1) => Ok(()),
        _ => Err(format!("{roots} root element(s), {depth} left open")),
    }
}
