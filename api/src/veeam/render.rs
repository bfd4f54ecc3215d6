//! Turning views into responses, in the request's negotiated format.

use super::negotiate::Format;
use super::views::Representation;
use super::xml::Xml;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;

pub fn render(format: Format, status: StatusCode, view: &impl Representation) -> HttpResponse {
    HttpResponse::build(status).content_type(format.content_type()).body(text(format, view))
}

/// The view as a document in `format`.
pub fn text(format: Format, view: &impl Representation) -> String {
    match format {
        Format::Json => view.json_text(),
        Format::Xml => {
            let mut x = Xml::document();
            view.xml(&mut x);
            x.finish()
        }
    }
}

/// The format of the current request (XML outside a request scope).
pub fn format() -> Format {
    super::negotiate::current()
}

pub fn ok(view: &impl Representation) -> HttpResponse {
    render(format(), StatusCode::OK, view)
}
