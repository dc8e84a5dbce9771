//! A campaign's page (`/app/campaigns/{id}`): KPIs, chart, leaderboard, tiers, breakdowns, link
//! cards with their forms, conversions with their audit.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::forms::{MintForm, Sent};
use super::names::{audit_result, audit_source, enum_text, event_name, label, slice_name, status_name, tier_name};
use super::{cell, rendered, signed_in, to_sign_in, Fig};
use crate::domain::{Conversion, Event};
use crate::error::{ApiError, Code};
use crate::http::views::{amount, count, session, Lang, Texts, BREAKDOWNS};
use crate::http::State;
use crate::lookup::{self, ConversionFilter, LinkFilter};
use crate::report::{self, Order, Sort, SortKey};
use crate::stats::Range;
use crate::store::RecordsExt;

pub(super) struct Header {
    pub(super) key: &'static str,
    pub(super) label: String,
    /// The way the rows are sorted by this figure, when they are.
    pub(super) active: Option<Order>,
    /// The order a click on the header asks for: the other way when the rows are sorted by
    /// it, else largest first.
    pub(super) next: &'static str,
}

pub(super) struct TableRow {
    pub(super) key: String,
    pub(super) label: String,
    pub(super) tier: String,
    pub(super) values: Vec<String>,
}

pub(super) struct BreakdownCard {
    pub(super) name: String,
    pub(super) slices: Vec<(String, String)>,
}

/// A KOL's page of the campaign, shared and open.
pub(super) struct SharedRow {
    pub(super) id: String,
    pub(super) kol: String,
    /// It covers every campaign of the KOL, this one among them (the API's share without a
    /// campaign).
    pub(super) every_campaign: bool,
    pub(super) since: String,
    /// When it ends by itself; empty when it does not.
    pub(super) until: String,
}

pub(super) struct LinkCard {
    pub(super) code: String,
    /// Its days of insights, when the page shows them (`?edit=<code>`), and its insights
    /// form's fields and day.
    pub(super) insights: Option<super::insights::CardInsights>,
    pub(super) insight_fields: Vec<super::insights::InsightField>,
    pub(super) insight_day: String,
    /// The page showing its days of insights.
    pub(super) days_href: String,
    /// Why its cost form or its insights form was not taken, and the `name` of the field at
    /// fault ("" for none): shown beside that form (`Refused`).
    pub(super) cost_error: Option<String>,
    pub(super) insights_error: Option<String>,
    pub(super) invalid: &'static str,
    /// What was just done to its link from the card (`Editing::did`).
    pub(super) done: Option<&'static str>,
    /// The KOL's id (`kol` is their name), for the form that shares their page.
    pub(super) kol_id: String,
    /// Stopped from the dashboard or the API (`status: disabled`): it can be started again.
    pub(super) disabled: bool,
    /// Its cost as a form takes it back ("1500.00").
    pub(super) cost_plain: String,
    /// Why the link no longer redirects (disabled, expired); `None` while it does.
    pub(super) ended: Option<&'static str>,
    pub(super) kol: String,
    pub(super) coupon: String,
    pub(super) cost: String,
    pub(super) short_url: String,
    pub(super) qr_svg: String,
    /// Its own figures, of the days shown.
    pub(super) fig: Fig,
}

/// A list of conversions: its table's id and name, the title of its `by` column and what it
/// says when empty (`conversions_table.html`).
pub(super) struct ConversionList {
    pub(super) id: &'static str,
    pub(super) label: &'static str,
    pub(super) by: &'static str,
    pub(super) empty: &'static str,
    pub(super) rows: Vec<ConversionRow>,
}

pub(super) struct ConversionRow {
    /// When it happened (`occurred_at`), to the minute, UTC.
    pub(super) when: String,
    pub(super) order: String,
    pub(super) event: &'static str,
    pub(super) status: String,
    /// Whose it is: the KOL on a campaign's page, the shop where no campaign claimed it.
    pub(super) by: String,
    /// With its currency, and a minus for money taken back: a row never reads as a sale in the
    /// campaign's currency when it is not one.
    pub(super) amount: String,
    pub(super) audit: String,
}

#[derive(Template)]
#[template(path = "app_campaign.html")]
pub(super) struct CampaignView {
    pub(super) t: &'static Texts,
    pub(super) csrf: String,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) currency: String,
    pub(super) sort: &'static str,
    pub(super) order: &'static str,
    /// The days asked for (`YYYY-MM-DD`, empty for open ends), and as a query's tail
    /// (`&from=…&to=…`) for the page's own links.
    pub(super) from: String,
    pub(super) to: String,
    /// Days asked for that could not be shown (the page is of every day): whether `from` and
    /// `to` are at fault.
    pub(super) range_refused: Option<(bool, bool)>,
    pub(super) range_query: String,
    /// The page's sort and days as a query (`sort=…&order=…&from=…`), which its forms send back
    /// so that the page they lead back to is the one they were on.
    pub(super) view: String,
    /// A KOL's page just ended from here, said above the pages shared.
    pub(super) page_ended: Option<String>,
    /// The last day the insights forms take, tomorrow (as the API: it is already today east
    /// of UTC). Their first day is yesterday (UTC: insights are read the day after).
    pub(super) tomorrow: String,
    /// The chart's heading: the last 30 days, or the days asked for.
    pub(super) daily: String,
    /// The days asked for begin before the chart's first (it draws at most 400).
    pub(super) chart_cut: bool,
    pub(super) fig: Fig,
    pub(super) chart: crate::http::views::Chart,
    pub(super) headers: Vec<Header>,
    pub(super) kols: Vec<TableRow>,
    pub(super) tiers: Vec<TableRow>,
    pub(super) breakdowns: Vec<BreakdownCard>,
    pub(super) links: Vec<LinkCard>,
    /// The KOLs' pages of this campaign that are open, to revoke.
    pub(super) shared: Vec<SharedRow>,
    /// KOLs' ids and names, offered by the new-link form.
    pub(super) known_kols: Vec<(String, String)>,
    pub(super) conversions: ConversionList,
    pub(super) mint: Sent<MintForm>,
}

/// A conversion as the dashboard's lists show it, in the page's language.
pub(super) fn conversion_row(t: &Texts, cv: &Conversion, by: String) -> ConversionRow {
    ConversionRow {
        when: cv.occurred_at.format("%Y-%m-%d %H:%M").to_string(),
        order: cv
            .refund_id
            .as_ref()
            .map_or_else(|| cv.order_id.clone(), |r| format!("{} / {r}", cv.order_id)),
        event: event_name(t, cv.event),
        status: status_name(t, cv.status).to_owned(),
        by,
        amount: cv.amount.map_or_else(String::new, |a| {
            let sign = if cv.event == Event::Refund { "−" } else { "" };
            let currency = cv
                .currency
                .as_ref()
                .map(|c| format!(" {}", c.as_str()))
                .unwrap_or_default();
            format!("{sign}{}{currency}", amount(a))
        }),
        audit: match cv.audit.is_empty() {
            true => t.audit_none.to_owned(),
            false => cv
                .audit
                .iter()
                .map(|a| {
                    format!(
                        "{} {} → {}",
                        audit_source(t, &a.source),
                        a.value,
                        audit_result(t, a.result)
                    )
                })
                .collect::<Vec<_>>()
                .join(" · "),
        },
    }
}

#[derive(Deserialize)]
pub(super) struct CampaignQuery {
    pub(super) sort: Option<String>,
    pub(super) order: Option<String>,
    /// The UTC days the page's figures cover (both included); every day without them.
    pub(super) from: Option<String>,
    pub(super) to: Option<String>,
    /// The link whose card shows its days of insights (`edit`), the day its form is filled
    /// with (`day`), and whether that day was just saved (`saved`: the card says what).
    pub(super) edit: Option<String>,
    pub(super) day: Option<String>,
    pub(super) saved: Option<String>,
    /// The numbers of the `day` just removed from the `edit` card (`insights::numbers_in_address`):
    /// the card says so, its form filled with them.
    pub(super) removed: Option<String>,
    /// What was just done to the `edit` card's link: `created` (the form for a new link),
    /// `cost`, `disable`, `enable` (from its card); the card says so.
    pub(super) did: Option<String>,
}

/// A card whose days of insights are shown (`CampaignQuery::edit`), or whose form was not
/// taken (`refused`).
pub(super) struct Editing<'a> {
    pub(super) code: &'a str,
    pub(super) day: Option<chrono::NaiveDate>,
    pub(super) saved: bool,
    pub(super) removed: Option<crate::domain::DayInsights>,
    pub(super) refused: Option<Refused>,
    /// What was just done to its link (`CampaignQuery::did`): said on the card, whose days of
    /// insights are then not shown.
    pub(super) did: Option<&'static str>,
}

/// A card's form that was not taken (`forms::edit_link`, `insights::report_insights`): the card
/// says why beside the form, which holds what was typed, its field at fault marked (WCAG 3.3.1;
/// it was a page of its own, and the way back lost what was typed).
pub(super) struct Refused {
    pub(super) form: CardForm,
    pub(super) reason: String,
    /// The `name` of the field at fault, if one is.
    pub(super) field: Option<&'static str>,
    /// What the form's fields held, by name.
    pub(super) typed: Vec<(&'static str, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum CardForm {
    Cost,
    Insights,
}

impl Refused {
    fn typed(&self, name: &str) -> Option<&str> {
        self.typed.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

pub(super) async fn campaign(
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    q: web::Query<CampaignQuery>,
) -> Result<HttpResponse, ApiError> {
    let Some(s) = signed_in(&req, &state) else {
        return Ok(to_sign_in(&req));
    };
    // Days that cannot be shown are refused as a form's fields are: the page of every day,
    // with the reason beside the days' form.
    let (range, refused) = match crate::http::stats::day_range(q.from.as_deref(), q.to.as_deref()) {
        Ok(range) => (range, None),
        Err(_) => (
            Range::default(),
            Some(RangeRefused::of(q.from.as_deref(), q.to.as_deref())),
        ),
    };
    let days_refused = refused.is_some();
    let page = match Sort::parse(q.sort.as_deref(), q.order.as_deref()) {
        Ok(sort) => {
            let editing = q.edit.as_deref().map(|code| Editing {
                code,
                day: q.day.as_deref().and_then(|d| d.parse().ok()),
                saved: q.saved.is_some(),
                removed: q.removed.as_deref().and_then(super::insights::numbers_from_address),
                refused: None,
                did: q.did.as_deref().and_then(|d| {
                    let t = Lang::of(&req).texts();
                    match d {
                        "created" => Some(t.link_created),
                        "cost" => Some(t.cost_saved),
                        "disable" => Some(t.link_stopped),
                        "enable" => Some(t.link_started),
                        _ => None,
                    }
                }),
            });
            campaign_page(&req, &state, &s, &id, (sort, range, refused), Sent::default(), editing).await
        }
        Err(e) => Err(e),
    };
    match page {
        Ok(page) if days_refused => {
            let mut page = rendered(page)?;
            *page.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
            Ok(page)
        }
        Ok(page) => rendered(page),
        // An unknown campaign or sort is a page to a browser, in its reader's language and
        // with the way back to the campaigns (API.md's JSON to other clients).
        Err(ApiError::Client { code, message }) => {
            let lang = Lang::of(&req);
            let said = match (lang, code) {
                (Lang::ZhTw, Code::NotFound) => format!("找不到代號為「{id}」的活動。"),
                (Lang::ZhTw, Code::InvalidInput) => "無法這樣排序：請點選排行榜的表頭排序。".to_owned(),
                _ => message,
            };
            Ok(crate::http::redirect::page_with_way_back(
                &req,
                code,
                &said,
                Some(("/app", lang.texts().back)),
            ))
        }
        Err(e) => Err(e),
    }
}

/// Days asked for that could not be shown: as typed, and which of the two is at fault.
pub(super) struct RangeRefused {
    pub(super) from: String,
    pub(super) to: String,
    pub(super) from_invalid: bool,
    pub(super) to_invalid: bool,
}

impl RangeRefused {
    fn of(from: Option<&str>, to: Option<&str>) -> Self {
        let unread = |d: Option<&str>| crate::http::stats::parse_day("", d).is_err();
        let (from_invalid, to_invalid) = match (unread(from), unread(to)) {
            // Both read as days: they run backwards.
            (false, false) => (true, true),
            either => either,
        };
        Self {
            from: from.unwrap_or_default().to_owned(),
            to: to.unwrap_or_default().to_owned(),
            from_invalid,
            to_invalid,
        }
    }
}

pub(super) async fn campaign_page(
    req: &HttpRequest,
    state: &State,
    session: &str,
    id: &str,
    (sort, range, days_refused): (Sort, Range, Option<RangeRefused>),
    mint: Sent<MintForm>,
    editing: Option<Editing<'_>>,
) -> Result<Result<String, askama::Error>, ApiError> {
    let t = Lang::of(req).texts();
    let c = lookup::campaign(state.store(), id).await?;
    let r = report::campaign(
        state.store(),
        &state.link_lists,
        state.clock.as_ref(),
        id,
        report::CampaignAsk {
            range,
            sort,
            interval: crate::stats::Interval::Day,
            per_link: true,
        },
        state.settings.hourly_retention_days,
    )
    .await?;
    let headers = SortKey::ALL
        .iter()
        .map(|k| Header {
            key: k.name(),
            label: label(t, *k).to_owned(),
            active: (*k == sort.key).then_some(sort.order),
            next: if *k == sort.key {
                sort.order.flipped().name()
            } else {
                Order::Desc.name()
            },
        })
        .collect();
    // Each KOL by name, wherever the page names one (id when the KOL has no name).
    let names: std::collections::HashMap<&str, &str> = r
        .kols
        .iter()
        .map(|row| {
            let name = if row.key.name.is_empty() {
                &row.key.kol
            } else {
                &row.key.name
            };
            (row.key.kol.as_str(), name.as_str())
        })
        .collect();
    let name_of = |kol: &str| names.get(kol).map_or_else(|| kol.to_owned(), |n| (*n).to_owned());
    let kols = r
        .kols
        .iter()
        .map(|row| TableRow {
            key: row.key.kol.clone(),
            label: name_of(&row.key.kol),
            tier: tier_name(t, row.key.tier).to_owned(),
            values: SortKey::ALL.iter().map(|k| cell(*k, &row.totals)).collect(),
        })
        .collect();
    // Tiers in their own order, nano to mega (the API sorts them like the KOLs).
    let mut tier_rows: Vec<_> = r.tiers.iter().collect();
    tier_rows.sort_by_key(|row| row.key.tier);
    let tiers = tier_rows
        .into_iter()
        .map(|row| TableRow {
            key: enum_text(&row.key.tier),
            label: tier_name(t, row.key.tier).to_owned(),
            tier: row.key.kols.to_string(),
            values: SortKey::ALL.iter().map(|k| cell(*k, &row.totals)).collect(),
        })
        .collect();
    let breakdowns = BREAKDOWNS
        .iter()
        .zip(t.dimensions)
        .map(|(dim, name)| BreakdownCard {
            name: name.to_owned(),
            slices: r
                .breakdown
                .get(dim)
                .map(|v| {
                    v.iter()
                        .take(8)
                        .map(|s| (slice_name(t, dim, &s.key), count(s.clicks)))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let filter = LinkFilter {
        campaign: Some(c.id.to_string()),
        kol: None,
    };
    // The KOLs the new-link form offers as it is typed in (the first 500).
    let known_kols = state
        .store()
        .list::<crate::domain::Kol>(None, 500)
        .await?
        .items
        .into_iter()
        .map(|k| (k.id.to_string(), k.name))
        .collect();
    let now = state.clock.now();
    // The KOLs' pages that show this campaign and are open (of the first 500 shares): its
    // own, and those of every campaign of a KOL with a link in it.
    let here: std::collections::HashSet<&str> = r.kols.iter().map(|k| k.key.kol.as_str()).collect();
    // A KOL's page just ended from here (`forms::revoke`): only a KOL of this campaign, since
    // the address can be typed.
    let page_ended = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "page_ended")
        .filter(|(_, kol)| here.contains(kol.as_ref()))
        .map(|(_, kol)| format!("{} {kol}", t.page_ended));
    let shared = state
        .store()
        .list::<crate::domain::Share>(None, 500)
        .await?
        .items
        .into_iter()
        .filter(|s| {
            s.is_open(now)
                && match &s.campaign {
                    Some(c) => c.as_str() == id,
                    None => here.contains(s.kol.as_str()),
                }
        })
        .map(|s| SharedRow {
            kol: name_of(s.kol.as_str()),
            every_campaign: s.campaign.is_none(),
            since: s.created_at.format("%Y-%m-%d %H:%M").to_string(),
            until: s
                .expires_at
                .map(|e| e.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
            id: s.id,
        })
        .collect();
    let links = lookup::links(state.store(), &filter, None, 200).await?.items;
    // The page's sort and days as a query, which its forms and links send back.
    let view = format!(
        "sort={}&order={}{}",
        sort.key.name(),
        sort.order.name(),
        [("from", range.from), ("to", range.to)]
            .iter()
            .filter_map(|(k, d)| d.map(|d| format!("&{k}={d}")))
            .collect::<String>()
    );
    let yesterday = (now.date_naive() - chrono::Days::new(1)).to_string();
    // The card whose days of insights are shown (read for that link alone), or whose form was
    // not taken.
    let (mut refused, editing) = match editing {
        Some(mut e) => (e.refused.take().map(|r| (e.code.to_owned(), r)), Some(e)),
        None => (None, None),
    };
    let did = editing.as_ref().and_then(|e| e.did.map(|d| (e.code.to_owned(), d)));
    // Its days of insights are shown for the insights form, not for the card's other one.
    let other_form = did.is_some() || refused.as_ref().is_some_and(|(_, r)| r.form == CardForm::Cost);
    let mut shown = match editing {
        Some(e) if !other_form && links.iter().any(|l| l.code.as_str() == e.code) => {
            let days = crate::http::insights::reported_days(state, e.code).await?;
            let page = format!("/app/campaigns/{id}?{view}&lang={}", t.html_lang);
            let day = e.day.or_else(|| yesterday.parse().ok());
            Some((
                e.code.to_owned(),
                super::insights::card_insights(Lang::of(req), &page, e.code, day, (e.saved, e.removed.as_ref()), &days),
            ))
        }
        _ => None,
    };
    let links = links
        .into_iter()
        .map(|l| {
            let short_url = format!("{}/{}", state.public_base, l.code);
            let insights = match shown.take() {
                Some((code, card)) if code == l.code.as_str() => Some(card),
                other => {
                    shown = other;
                    None
                }
            };
            let refused = match refused.take() {
                Some((code, r)) if code == l.code.as_str() => Some(r),
                other => {
                    refused = other;
                    None
                }
            };
            let mut insight_fields = super::insights::insight_fields(t, insights.as_ref());
            let mut insight_day = insights.as_ref().map_or_else(|| yesterday.clone(), |c| c.date.clone());
            let mut cost_plain = l.cost.to_string();
            if let Some(r) = &refused {
                for f in &mut insight_fields {
                    f.invalid = r.field == Some(f.name);
                    if let Some(v) = r.typed(f.name) {
                        f.value = v.to_owned();
                    }
                }
                if let Some(v) = r.typed("date") {
                    insight_day = v.to_owned();
                }
                if let Some(v) = r.typed("cost") {
                    cost_plain = v.to_owned();
                }
            }
            LinkCard {
                days_href: format!(
                    "/app/campaigns/{id}?{view}&lang={}&edit={code}#link-{code}",
                    t.html_lang,
                    code = l.code
                ),
                insight_fields,
                insight_day,
                insights,
                invalid: refused.as_ref().and_then(|r| r.field).unwrap_or_default(),
                done: did.as_ref().filter(|(c, _)| c == l.code.as_str()).map(|(_, d)| *d),
                cost_error: refused
                    .as_ref()
                    .filter(|r| r.form == CardForm::Cost)
                    .map(|r| r.reason.clone()),
                insights_error: refused
                    .as_ref()
                    .filter(|r| r.form == CardForm::Insights)
                    .map(|r| r.reason.clone()),
                code: l.code.to_string(),
                kol_id: l.kol.to_string(),
                ended: crate::http::views::ended(t, l.standing(now)),
                disabled: l.status == crate::domain::LinkStatus::Disabled,
                cost_plain,
                kol: name_of(l.kol.as_str()),
                coupon: l.coupon.map(|c| c.to_string()).unwrap_or_default(),
                cost: amount(l.cost),
                qr_svg: format!("{short_url}/qr.svg"),
                short_url,
                // A link minted while the report was read has none yet: nothing counted.
                fig: r
                    .per_link
                    .get(l.code.as_str())
                    .map_or_else(|| Fig::of(&crate::stats::Counts::default().totals()), Fig::of),
            }
        })
        .collect();
    // The newest 50 of the days shown, in the order of the time the table shows.
    let mut newest = lookup::conversions(
        state.store(),
        &ConversionFilter {
            campaign: Some(c.id.to_string()),
            days: range,
            ..ConversionFilter::default()
        },
        None,
        50,
    )
    .await?
    .items;
    newest.sort_by_key(|c| std::cmp::Reverse(c.occurred_at));
    let rows = newest
        .iter()
        .map(|cv| conversion_row(t, cv, cv.kol.as_deref().map(&name_of).unwrap_or_default()))
        .collect();
    let conversions = ConversionList {
        id: "conversions",
        label: t.conversions_list,
        by: t.kol,
        empty: t.no_conversions,
        rows,
    };
    Ok(CampaignView {
        t,
        csrf: session::csrf(state, session),
        tomorrow: (now.date_naive() + chrono::Days::new(1)).to_string(),
        id: c.id.to_string(),
        name: c.name.clone(),
        currency: c.currency.as_str().to_owned(),
        sort: sort.key.name(),
        order: sort.order.name(),
        from: days_refused.as_ref().map_or_else(
            || range.from.map(|d| d.to_string()).unwrap_or_default(),
            |r| r.from.clone(),
        ),
        to: days_refused
            .as_ref()
            .map_or_else(|| range.to.map(|d| d.to_string()).unwrap_or_default(), |r| r.to.clone()),
        range_refused: days_refused.as_ref().map(|r| (r.from_invalid, r.to_invalid)),
        view,
        page_ended,
        range_query: [("from", range.from), ("to", range.to)]
            .iter()
            .filter_map(|(k, d)| d.map(|d| format!("&{k}={d}")))
            .collect(),
        chart_cut: range.from.is_some_and(|f| {
            r.series
                .first()
                .and_then(|p| p.t.get(..10))
                .is_some_and(|first| first > f.to_string().as_str())
        }),
        daily: match (range.from, range.to) {
            (None, None) => t.daily.to_owned(),
            _ => format!(
                "{} – {} (UTC)",
                r.series
                    .first()
                    .map(|p| p.t.get(..10).unwrap_or(&p.t))
                    .unwrap_or_default(),
                r.series
                    .last()
                    .map(|p| p.t.get(..10).unwrap_or(&p.t))
                    .unwrap_or_default()
            ),
        },
        fig: Fig::of(&r.totals),
        chart: crate::http::views::Chart::of(&r.series, t),
        headers,
        kols,
        tiers,
        breakdowns,
        links,
        shared,
        known_kols,
        conversions,
        mint,
    }
    .render())
}
