//! The public and protected pages, and the stylesheets.

use rocket::http::{ContentType, Header};
use rocket::{get, Responder, Route, State};

use crate::auth::Auth;
use crate::web::guard::LoggedIn;
use crate::web::pages::Layout;
use crate::web::render::Page;
use crate::web::BrandStylesheet;

#[get("/")]
pub fn index(layout: Layout<'_>) -> Page {
    layout.index()
}

#[get("/welcome")]
pub fn welcome(me: &LoggedIn, layout: Layout<'_>) -> Page {
    layout.welcome(me)
}

/// Stylesheets may be cached for an hour: they change only with a new release (or, for the
/// operator's, a restart).
const STYLESHEET_CACHE: &str = "public, max-age=3600";

#[derive(Responder)]
pub struct Stylesheet<T>(T, ContentType, Header<'static>);

#[get("/static/portal.css")]
pub fn stylesheet() -> Stylesheet<&'static str> {
    Stylesheet(
        include_str!("../../static/portal.css"),
        ContentType::CSS,
        Header::new("Cache-Control", STYLESHEET_CACHE),
    )
}

/// The portal's own script for passkeys (the only script it serves).
#[get("/static/passkeys.js")]
pub fn passkeys_script() -> Stylesheet<&'static str> {
    Stylesheet(
        include_str!("../../static/passkeys.js"),
        ContentType::JavaScript,
        Header::new("Cache-Control", STYLESHEET_CACHE),
    )
}

/// The operator's stylesheet (`branding.stylesheet`), served from memory; 404 without one.
#[get("/static/brand.css")]
pub fn brand_stylesheet(css: &State<BrandStylesheet>) -> Option<Stylesheet<String>> {
    let css = css.0.clone()?;
    Some(Stylesheet(css, ContentType::CSS, Header::new("Cache-Control", STYLESHEET_CACHE)))
}

/// A provider's button image (`oauth.<slug>.icon`), served from memory; 404 for any other.
#[get("/static/icons/<file>")]
pub fn provider_icon<'r>(file: &str, auth: &'r State<Auth>) -> Option<Stylesheet<&'r [u8]>> {
    let icon = auth.providers().icon(file)?;
    let content_type = ContentType::parse_flexible(icon.content_type).unwrap_or(ContentType::Binary);
    Some(Stylesheet(&icon.bytes, content_type, Header::new("Cache-Control", STYLESHEET_CACHE)))
}

/// This module's routes, mounted at `/`.
pub fn routes() -> Vec<Route> {
    rocket::routes![index, welcome, stylesheet, passkeys_script, brand_stylesheet, provider_icon]
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_brand_stylesheet_route_is_where_pages_link_it() {
        assert_eq!(rocket::uri!(super::brand_stylesheet).to_string(), crate::web::BRAND_STYLESHEET);
    }
}
