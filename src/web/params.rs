//! Path parameters: a provider's slug as it appears in `/login/<slug>` and `/auth/<slug>`.

use rocket::request::FromParam;

use crate::auth::oauth::Slug;

impl<'a> FromParam<'a> for Slug {
    type Error = &'a str;

    fn from_param(param: &'a str) -> Result<Self, Self::Error> {
        Slug::new(param).ok_or(param)
    }
}
