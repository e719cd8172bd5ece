//! Path parameters: a provider as it appears in `/login/<provider>` and `/auth/<provider>`.

use rocket::request::FromParam;

use crate::auth::oauth::ProviderKind;

impl<'a> FromParam<'a> for ProviderKind {
    type Error = &'a str;

    fn from_param(param: &'a str) -> Result<Self, Self::Error> {
        ProviderKind::from_slug(param).ok_or(param)
    }
}
