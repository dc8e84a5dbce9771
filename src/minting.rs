//! Minting links: one, or one per KOL in a single call, and changing them.
//!
//! The rules: the UTM set is the defaults (the KOL's platform, `kol`, the campaign id, the KOL
//! id), overridden by the campaign's, overridden by the link's own; the destination falls back to
//! the call's, then the campaign's; numeric ids are reserved in one step; a kolink-chosen code
//! that happens to be taken is chosen again; all links of a call are created or none.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::cache::LinkCache;
use crate::clock::Clock;
use crate::domain::{
    has_control_chars, target_url, writable_time, Campaign, CodeError, Coupon, Destination, Kol, Link, LinkStatus,
    Money, ShortCode, Utm,
};
use crate::error::{ApiError, Code};
use crate::lookup;
use crate::lookup::UPDATE_TRIES;
use crate::store::{LinkConflict, Store, StoreError};

/// The per-link fields of both the single and the bulk call.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    pub kol: String,
    pub destination: Option<String>,
    pub cost: Option<serde_json::Value>,
    pub coupon: Option<String>,
    pub code: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub utm: Option<Utm>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One link per KOL of a campaign, with a destination for all of them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkSpec {
    pub destination: Option<String>,
    pub kols: Vec<LinkSpec>,
}

/// What may change on a link.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LinkPatch {
    pub destination: Option<String>,
    pub cost: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "crate::domain::nullable")]
    pub coupon: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::domain::nullable")]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub status: Option<LinkStatus>,
}

/// Mints and changes links; forgets changed links in the redirect cache.
pub struct Minter<'a> {
    pub store: &'a dyn Store,
    pub cache: &'a LinkCache,
    pub clock: &'a dyn Clock,
}

/// A link ready to store, but for its numeric id; `generated` when kolink chose the code.
struct Draft {
    link: Link,
    generated: bool,
}

impl Minter<'_> {
    pub async fn one(&self, campaign: &str, spec: LinkSpec) -> Result<Link, ApiError> {
        let campaign = lookup::named_campaign(self.store, campaign).await?;
        let kol = lookup::named_kol(self.store, &spec.kol).await?;
        let d = self.draft(&campaign, &kol, spec, None)?;
        match self.store_drafts(vec![d]).await? {
            Ok(mut links) => Ok(links.remove(0)),
            Err((_, conflict)) => Err(conflict_error(&conflict)),
        }
    }

    /// All entries are checked before any link is created; an error names the bad entry.
    pub async fn for_kols(&self, campaign: &str, bulk: BulkSpec) -> Result<Vec<Link>, ApiError> {
        let campaign = lookup::campaign(self.store, campaign).await?;
        if bulk.kols.is_empty() || bulk.kols.len() > 500 {
            return Err(ApiError::invalid("kols must hold 1 to 500 entries."));
        }
        let fallback = bulk.destination.as_deref().map(parse_destination).transpose()?;
        let mut drafts = Vec::with_capacity(bulk.kols.len());
        let mut codes = HashSet::new();
        let mut coupons = HashSet::new();
        for (i, spec) in bulk.kols.into_iter().enumerate() {
            let name_entry = |e: ApiError| match e {
                ApiError::Client { code, message } => ApiError::new(code, format!("kols[{i}]: {message}")),
                other => other,
            };
            let kol = lookup::named_kol(self.store, &spec.kol).await.map_err(name_entry)?;
            let d = self
                .draft(&campaign, &kol, spec, fallback.as_ref())
                .map_err(name_entry)?;
            if !d.generated && !codes.insert(d.link.code.to_string()) {
                return Err(ApiError::invalid(format!(
                    "kols[{i}]: the code '{}' appears twice in this call.",
                    d.link.code
                )));
            }
            if let Some(c) = &d.link.coupon {
                if !coupons.insert(c.key()) {
                    return Err(ApiError::invalid(format!(
                        "kols[{i}]: the coupon '{c}' appears twice in this call."
                    )));
                }
            }
            drafts.push(d);
        }
        // One entry's conflict fails the call as a bad entry, named like the others.
        self.store_drafts(drafts).await?.map_err(|(i, conflict)| {
            ApiError::new(Code::InvalidInput, format!("kols[{i}]: {}", conflict_error(&conflict)))
        })
    }

    /// Changes a link atomically with its coupon: a change made meanwhile by another request
    /// is read again and kept, never overwritten.
    pub async fn patch(&self, code: &str, patch: LinkPatch) -> Result<Link, ApiError> {
        let destination = patch.destination.as_deref().map(parse_destination).transpose()?;
        let cost = patch.cost.as_ref().map(|c| parse_cost(Some(c))).transpose()?;
        let coupon = patch
            .coupon
            .map(|c| c.as_deref().map(Coupon::parse).transpose())
            .transpose()?;
        let tags = patch.tags.map(parse_tags).transpose()?;
        let expires_at = patch
            .expires_at
            .map(|e| e.map(|t| writable_time("expires_at", t)).transpose())
            .transpose()?;
        for _ in 0..UPDATE_TRIES {
            let Some(raw) = self.store.get_link_json(code).await? else {
                return Err(ApiError::not_found(format!("No link has the code '{code}'.")));
            };
            let mut l: Link = serde_json::from_str(&raw).map_err(StoreError::from)?;
            if let Some(d) = &destination {
                l.destination = d.clone();
                l.target_url = target_url(&l.destination, &l.utm);
            }
            if let Some(c) = cost {
                l.cost = c;
            }
            if let Some(c) = &coupon {
                l.coupon = c.clone();
            }
            if let Some(t) = &tags {
                l.tags = t.clone();
            }
            if let Some(e) = expires_at {
                // A past expiry would end a live link at once, its taps answered `410`: a
                // typing slip, refused as when minting. The one it already has may be sent
                // back (a client that writes the whole link back).
                if e.is_some_and(|e| e <= self.clock.now() && l.expires_at != Some(e)) {
                    return Err(past_expiry());
                }
                l.expires_at = e;
            }
            if let Some(s) = patch.status {
                l.status = s;
            }
            l.updated_at = self.clock.now_to_second();
            match self.store.update_link(&raw, &l).await? {
                Ok(()) => {
                    self.cache.forget(l.code.as_str());
                    return Ok(l);
                }
                Err(LinkConflict::Stale) => continue,
                Err(conflict) => return Err(conflict_error(&conflict)),
            }
        }
        Err(ApiError::Unavailable(anyhow::anyhow!(
            "the link '{code}' changed {UPDATE_TRIES} times while it was being updated"
        )))
    }

    fn draft(
        &self,
        campaign: &Campaign,
        kol: &Kol,
        spec: LinkSpec,
        fallback: Option<&Destination>,
    ) -> Result<Draft, ApiError> {
        let now = self.clock.now_to_second();
        let destination = match spec.destination.as_deref() {
            Some(d) => parse_destination(d)?,
            None => fallback.or(campaign.destination.as_ref()).cloned().ok_or_else(|| {
                ApiError::new(
                    Code::InvalidDestination,
                    "No destination: give one, or set the campaign's destination.",
                )
            })?,
        };
        let link_utm = spec.utm.unwrap_or_default().validate()?;
        let defaults = Utm {
            source: Some(kol.platform.as_str().to_owned()),
            medium: Some("kol".to_owned()),
            campaign: Some(campaign.id.to_string()),
            content: Some(kol.id.to_string()),
            term: None,
        };
        let utm = defaults.overridden_by(&campaign.utm).overridden_by(&link_utm);
        let expires_at = spec.expires_at.map(|t| writable_time("expires_at", t)).transpose()?;
        if expires_at.is_some_and(|e| e <= now) {
            return Err(past_expiry());
        }
        let (code, generated) = match spec.code.as_deref() {
            Some(c) => (parse_code(c)?, false),
            None => (ShortCode::generate(), true),
        };
        Ok(Draft {
            link: Link {
                id: 0,
                target_url: target_url(&destination, &utm),
                code,
                campaign: campaign.id.clone(),
                kol: kol.id.clone(),
                destination,
                utm,
                cost: parse_cost(spec.cost.as_ref())?,
                coupon: spec.coupon.as_deref().map(Coupon::parse).transpose()?,
                tags: parse_tags(spec.tags)?,
                status: LinkStatus::Active,
                created_at: now,
                updated_at: now,
                expires_at,
            },
            generated,
        })
    }

    /// Stores drafts all together; chooses kolink-chosen codes again when they are taken. A
    /// conflict that remains is given with the index of its draft.
    async fn store_drafts(&self, mut drafts: Vec<Draft>) -> Result<Result<Vec<Link>, (usize, LinkConflict)>, ApiError> {
        let first = self.store.reserve_link_ids(drafts.len() as u64).await?;
        for (i, d) in drafts.iter_mut().enumerate() {
            d.link.id = first + i as u64;
        }
        for _ in 0..5 {
            let links: Vec<Link> = drafts.iter().map(|d| d.link.clone()).collect();
            match self.store.create_links(&links).await? {
                Ok(()) => {
                    for l in &links {
                        self.cache.forget(l.code.as_str());
                    }
                    return Ok(Ok(links));
                }
                Err(LinkConflict::Code(code)) => match drafts.iter().position(|d| d.link.code.as_str() == code) {
                    Some(i) if drafts[i].generated => drafts[i].link.code = ShortCode::generate(),
                    Some(i) => return Ok(Err((i, LinkConflict::Code(code)))),
                    None => return Ok(Err((0, LinkConflict::Code(code)))),
                },
                Err(LinkConflict::Coupon(key)) => {
                    let i = drafts
                        .iter()
                        .position(|d| d.link.coupon.as_ref().is_some_and(|c| c.key().as_str() == key))
                        .unwrap_or(0);
                    let shown = drafts[i].link.coupon.as_ref().map_or(key, |c| c.to_string());
                    return Ok(Err((i, LinkConflict::Coupon(shown))));
                }
                Err(LinkConflict::Stale) => {
                    return Err(ApiError::Internal(anyhow::anyhow!("creating links cannot be stale")))
                }
            }
        }
        Err(ApiError::Internal(anyhow::anyhow!(
            "Failed to find a free code after five tries"
        )))
    }
}

fn conflict_error(conflict: &LinkConflict) -> ApiError {
    match conflict {
        LinkConflict::Code(code) => {
            ApiError::new(Code::CodeTaken, format!("The code '{code}' is taken: choose another."))
        }
        LinkConflict::Coupon(c) => coupon_taken(c),
        LinkConflict::Stale => ApiError::Internal(anyhow::anyhow!("a new link cannot be stale")),
    }
}

fn coupon_taken(c: &str) -> ApiError {
    ApiError::new(Code::CouponTaken, format!("The coupon '{c}' belongs to another link."))
}

fn parse_tags(tags: Vec<String>) -> Result<Vec<String>, ApiError> {
    if tags.len() > 20 {
        return Err(ApiError::invalid("A link takes at most 20 tags."));
    }
    for t in &tags {
        if t.is_empty() || t.chars().count() > 64 || has_control_chars(t) {
            return Err(ApiError::invalid(
                "Each tag must be 1 to 64 characters without control characters.",
            ));
        }
    }
    Ok(tags)
}

fn parse_cost(v: Option<&serde_json::Value>) -> Result<Money, ApiError> {
    v.map(|v| Money::from_json(v).map_err(|e| ApiError::invalid(format!("cost: {e}."))))
        .transpose()
        .map(Option::unwrap_or_default)
}

fn parse_code(s: &str) -> Result<ShortCode, ApiError> {
    ShortCode::parse(s).map_err(|e| match e {
        CodeError::Malformed(i) => ApiError::new(Code::InvalidCode, format!("{i}.")),
        CodeError::Reserved(i) => ApiError::new(Code::ReservedCode, format!("{i}.")),
    })
}

pub fn parse_destination(s: &str) -> Result<Destination, ApiError> {
    Destination::parse(s).map_err(|e| ApiError::new(Code::InvalidDestination, format!("The {e}.")))
}

/// A past `expires_at`, minting or changing a link: it would end the link at once.
fn past_expiry() -> ApiError {
    ApiError::invalid("expires_at is in the past: give a time to come (status disabled stops a link now).")
}
