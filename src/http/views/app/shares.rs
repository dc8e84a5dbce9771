//! Sharing a KOL's page from the dashboard: made from a link's card and its address shown once
//! (`share`, `shown_share`), or ended from the campaign's list of pages shared (`revoke`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::forms::{form_post, page_of, refused_with_way_back, Typed};
use super::{see_other, signed_in, to_sign_in};
use crate::error::ApiError;
use crate::http::views::Lang;
use crate::http::State;

#[derive(Deserialize)]
pub(super) struct ShareForm {
    pub(super) csrf: String,
    pub(super) kol: String,
}

#[derive(askama::Template)]
#[template(path = "app_share.html")]
struct ShareView<'a> {
    t: &'static crate::http::views::Texts,
    kol: &'a str,
    campaign: &'a str,
    /// The new page's address; none once it was shown.
    url: Option<String>,
}

/// The cookie that carries a new KOL page's token from the form's answer to the page that
/// shows it (`shown_share`), once.
const SHOWN_SHARE: &str = "kolink_shown_share";

/// A page for a KOL of this campaign, shared from a link's card: its address is shown once,
/// as the API's `POST /api/v1/kols/{id}/shares` shows it, to send to the KOL. The answer leads
/// to the page that shows it (`shown_share`), with the token in a cookie of that page alone, so
/// that reloading it makes no other page (reloading the form's answer made one each time).
pub(super) async fn share(
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    form: web::Form<ShareForm>,
) -> HttpResponse {
    if let Err(answer) = form_post(&req, &state, &form.csrf) {
        return *answer;
    }
    let lang = Lang::of(&req);
    let back = format!("/app/campaigns/{id}?lang={}", lang.tag());
    let made = async {
        // Only a KOL this campaign has a link for: their page of it would be empty otherwise.
        if !has_link_in(&state, &id, &form.kol).await? {
            return Err(ApiError::not_found(match lang {
                Lang::ZhTw => format!("這個活動沒有 KOL「{}」的連結。", form.kol),
                Lang::En => format!("This campaign has no link of KOL '{}'.", form.kol),
            }));
        }
        let kol = crate::lookup::kol(state.store(), &form.kol).await?;
        let (_, token) = crate::http::shares::new_share(&state, &form.kol, Some(&id), None).await?;
        Ok((kol, token))
    };
    match made.await {
        Ok((kol, token)) => {
            let shown = shown_share_cookie(&state, &id, Some(token));
            let to = format!("/app/campaigns/{id}/shares?kol={}&lang={}", kol.id, lang.tag());
            HttpResponse::SeeOther()
                .cookie(shown)
                .insert_header((actix_web::http::header::LOCATION, to))
                .finish()
        }
        Err(e) => refused_with_way_back(
            &req,
            e,
            Typed {
                kol: &form.kol,
                ..Typed::default()
            },
            &back,
        ),
    }
}

/// The cookie of `SHOWN_SHARE` for campaign `id`'s share page: `token` for five minutes, or
/// (`None`) its removal.
fn shown_share_cookie(state: &State, id: &str, token: Option<String>) -> actix_web::cookie::Cookie<'static> {
    let path = format!("/app/campaigns/{id}/shares");
    let removal = token.is_none();
    let mut c = crate::http::views::session::private(state, SHOWN_SHARE, token.unwrap_or_default(), path)
        .max_age(actix_web::cookie::time::Duration::minutes(5))
        .finish();
    if removal {
        c.make_removal();
    }
    c
}

#[derive(Deserialize)]
pub(super) struct ShownShareQuery {
    kol: Option<String>,
}

/// `GET /app/campaigns/{id}/shares?kol=…`: the address of the KOL page just made (`share`),
/// shown once: the cookie that carries it goes with this answer, and a reload says it was shown.
pub(super) async fn shown_share(
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    q: web::Query<ShownShareQuery>,
) -> HttpResponse {
    if signed_in(&req, &state).is_none() {
        return to_sign_in(&req);
    }
    // The form's address opened as a page (no KOL named): the form's page, as for every form.
    let Some(kol) = q.kol.as_deref() else {
        return super::to_form_page(req).await;
    };
    let lang = Lang::of(&req);
    let kol = match crate::lookup::kol(state.store(), kol).await {
        Ok(kol) => kol,
        Err(e) => {
            let back = format!("/app/campaigns/{id}?lang={}", lang.tag());
            return refused_with_way_back(&req, e, Typed::default(), &back);
        }
    };
    let token = req
        .cookie(SHOWN_SHARE)
        .map(|c| c.value().to_owned())
        .filter(|t| !t.is_empty());
    let page = ShareView {
        t: lang.texts(),
        kol: if kol.name.is_empty() {
            kol.id.as_str()
        } else {
            &kol.name
        },
        campaign: &id,
        url: token.map(|token| format!("{}/s/{token}", state.public_base)),
    };
    match askama::Template::render(&page) {
        Ok(body) => crate::http::views::html_page(actix_web::http::StatusCode::OK)
            .cookie(shown_share_cookie(&state, &id, None))
            .body(body),
        Err(e) => actix_web::ResponseError::error_response(&ApiError::Internal(anyhow::Error::new(e))),
    }
}

#[derive(Deserialize)]
pub(super) struct RevokeForm {
    pub(super) csrf: String,
    pub(super) view: Option<String>,
}

/// A KOL's page of this campaign ended from the campaign page's list of shared pages, as the
/// API's `DELETE /api/v1/shares/{id}` ends it.
pub(super) async fn revoke(
    req: HttpRequest,
    state: State,
    path: web::Path<(String, String)>,
    form: web::Form<RevokeForm>,
) -> HttpResponse {
    if let Err(answer) = form_post(&req, &state, &form.csrf) {
        return *answer;
    }
    let (id, share) = path.into_inner();
    let lang = Lang::of(&req);
    let page = page_of(&id, form.view.as_deref(), lang);
    let ended = async {
        // Only a share the page lists: of its campaign, or of every campaign of a KOL with a
        // link in it.
        let listed = match crate::store::RecordsExt::get::<crate::domain::Share>(state.store(), &share).await? {
            Some(s) => match &s.campaign {
                Some(c) if c.as_str() == id => Some(s.kol),
                Some(_) => None,
                None => has_link_in(&state, &id, s.kol.as_str()).await?.then_some(s.kol),
            },
            None => None,
        };
        let Some(kol) = listed else {
            return Err(ApiError::not_found(format!(
                "No page of this campaign has id '{share}'."
            )));
        };
        crate::http::shares::end_share(&state, &share).await.map(|()| kol)
    };
    match ended.await {
        Ok(kol) => see_other(&format!("{page}&page_ended={kol}#shares")),
        Err(e) => refused_with_way_back(&req, e, Typed::default(), &format!("{page}#shares")),
    }
}

/// Whether campaign `id` has a link of KOL `kol`.
async fn has_link_in(state: &State, id: &str, kol: &str) -> Result<bool, ApiError> {
    let filter = crate::lookup::LinkFilter {
        campaign: Some(id.to_owned()),
        kol: Some(kol.to_owned()),
    };
    Ok(!crate::lookup::links(state.store(), &filter, None, 1)
        .await?
        .items
        .is_empty())
}
