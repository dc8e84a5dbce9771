//! The dashboard's forms: creating a campaign and minting a link for a KOL. Each checks its
//! session and CSRF token, then calls the same rules the API does; a form that is not taken
//! shows its page again, with the reason and the fields as they were sent.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{campaign_page, campaigns_page, rendered, see_other, session, signed_in, to_sign_in};
use crate::error::{ApiError, Code};
use crate::http::campaigns::{new_campaign, CreateCampaign};
use crate::http::State;
use crate::minting::LinkSpec;
use crate::report::SortKey;

/// The session of a form post with its right CSRF token; else the answer to give (to the
/// sign-in page, or "this form has expired").
pub(super) fn form_post(req: &HttpRequest, state: &State, csrf: &str) -> Result<String, Box<HttpResponse>> {
    let Some(s) = signed_in(req, state) else {
        return Err(Box::new(to_sign_in()));
    };
    if !session::csrf_ok(state, &s, csrf) {
        return Err(Box::new(crate::http::redirect::page(
            req,
            Code::Unauthorized,
            super::FORM_EXPIRED,
        )));
    }
    Ok(s)
}

/// A form that was not taken: for a browser, its page again with the reason above the form
/// and the fields as they were sent (`page`, with the error's status); for other clients,
/// API.md's JSON error (`redirect::page`, which also answers a browser whose page could not be
/// built). A store that failed is an error answer either way.
async fn form_error<F>(req: &HttpRequest, e: ApiError, page: F) -> HttpResponse
where
    F: std::future::Future<Output = Result<Result<String, askama::Error>, ApiError>>,
{
    let answer = |e: ApiError| match e {
        ApiError::Client { code, message } => crate::http::redirect::page(req, code, &message),
        other => actix_web::ResponseError::error_response(&other),
    };
    match e {
        ApiError::Client { code, .. } if crate::http::accepts(req, "text/html") => {
            match page.await.and_then(rendered) {
                Ok(mut page) => {
                    *page.status_mut() = code.describe().1;
                    page
                }
                // The page itself could not be built (its campaign is gone, the store is down).
                Err(e) => answer(e),
            }
        }
        e => answer(e),
    }
}

/// A form's fields as sent, and why it was not taken (shown above it).
#[derive(Default)]
pub(super) struct Sent<T> {
    pub(super) fields: T,
    pub(super) failed: Option<String>,
}

impl<T> Sent<T> {
    fn failed(fields: T, e: &ApiError) -> Self {
        let failed = match e {
            ApiError::Client { message, .. } => Some(message.clone()),
            _ => None,
        };
        Self { fields, failed }
    }
}

#[derive(Deserialize, Default)]
pub(super) struct NewCampaignForm {
    pub(super) csrf: String,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) destination: Option<String>,
    pub(super) currency: Option<String>,
}

pub(super) async fn create_campaign(req: HttpRequest, state: State, form: web::Form<NewCampaignForm>) -> HttpResponse {
    let s = match form_post(&req, &state, &form.csrf) {
        Ok(s) => s,
        Err(answer) => return *answer,
    };
    let f = form.into_inner();
    let body = CreateCampaign {
        id: f.id.clone(),
        name: f.name.clone(),
        destination: f.destination.clone().filter(|d| !d.is_empty()),
        currency: f
            .currency
            .clone()
            .filter(|c| !c.is_empty())
            .map(|c| c.to_ascii_uppercase()),
        ..CreateCampaign::default()
    };
    match new_campaign(&state, body).await {
        Ok(c) => see_other(&format!("/app/campaigns/{}", c.id)),
        Err(e) => {
            let sent = Sent::failed(f, &e);
            form_error(&req, e, campaigns_page(&req, &state, &s, sent)).await
        }
    }
}

#[derive(Deserialize, Default)]
pub(super) struct MintForm {
    pub(super) csrf: String,
    pub(super) kol: String,
    pub(super) cost: Option<String>,
    pub(super) coupon: Option<String>,
}

pub(super) async fn mint(
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    form: web::Form<MintForm>,
) -> HttpResponse {
    let s = match form_post(&req, &state, &form.csrf) {
        Ok(s) => s,
        Err(answer) => return *answer,
    };
    let f = form.into_inner();
    let spec = LinkSpec {
        kol: f.kol.clone(),
        destination: None,
        cost: f.cost.clone().filter(|c| !c.is_empty()).map(serde_json::Value::String),
        coupon: f.coupon.clone().filter(|c| !c.is_empty()),
        code: None,
        tags: vec![],
        utm: None,
        expires_at: None,
    };
    match state.minter().one(&id, spec).await {
        Ok(_) => see_other(&format!("/app/campaigns/{id}")),
        Err(e) => {
            let sent = Sent::failed(f, &e);
            form_error(&req, e, campaign_page(&req, &state, &s, &id, SortKey::Roi, sent)).await
        }
    }
}
