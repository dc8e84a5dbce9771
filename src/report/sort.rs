//! The figures report rows sort by (`?sort=`), largest first unless `?order=asc` asks for the
//! smallest (the lowest CPA, the cheapest click).

use serde::Serialize;

use super::Row;
use crate::error::ApiError;
use crate::stats::Totals;

/// A figure rows can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Roi,
    Roas,
    Clicks,
    UniqueClicks,
    Impressions,
    Ctr,
    Conversions,
    ConversionRate,
    Revenue,
    NetRevenue,
    Refunds,
    Cost,
    Epc,
    Cpc,
    Cpa,
    Aov,
    Engagements,
    EngagementRate,
    Reach,
    PixelImpressions,
    BotClicks,
    Previews,
    SuspiciousClicks,
}

/// A figure's value, compared within its kind: counts and money exactly, rates as numbers.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub enum Figure {
    Count(u64),
    Minor(i64),
    Rate(f64),
}

impl SortKey {
    /// Every figure of `Totals` but the events by name, in the order the dashboard's columns
    /// show them.
    pub const ALL: [SortKey; 23] = [
        SortKey::Roi,
        SortKey::Roas,
        SortKey::Clicks,
        SortKey::UniqueClicks,
        SortKey::Impressions,
        SortKey::Ctr,
        SortKey::Conversions,
        SortKey::ConversionRate,
        SortKey::Revenue,
        SortKey::NetRevenue,
        SortKey::Refunds,
        SortKey::Cost,
        SortKey::Epc,
        SortKey::Cpc,
        SortKey::Cpa,
        SortKey::Aov,
        SortKey::Engagements,
        SortKey::EngagementRate,
        SortKey::Reach,
        SortKey::PixelImpressions,
        SortKey::BotClicks,
        SortKey::Previews,
        SortKey::SuspiciousClicks,
    ];

    /// The name of the figure in `totals`, and in `?sort=`.
    pub fn name(self) -> &'static str {
        use SortKey::*;
        match self {
            Roi => "roi",
            Roas => "roas",
            Clicks => "clicks",
            UniqueClicks => "unique_clicks",
            Impressions => "impressions",
            Ctr => "ctr",
            Conversions => "conversions",
            ConversionRate => "conversion_rate",
            Revenue => "revenue",
            NetRevenue => "net_revenue",
            Refunds => "refunds",
            Cost => "cost",
            Epc => "epc",
            Cpc => "cpc",
            Cpa => "cpa",
            Aov => "aov",
            Engagements => "engagements",
            EngagementRate => "engagement_rate",
            Reach => "reach",
            PixelImpressions => "pixel_impressions",
            BotClicks => "bot_clicks",
            Previews => "previews",
            SuspiciousClicks => "suspicious_clicks",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ApiError> {
        Self::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
            ApiError::invalid(format!("sort must be one of {}.", names.join(", ")))
        })
    }

    /// This figure of `t`; `None` where it is `null`.
    pub fn figure(self, t: &Totals) -> Option<Figure> {
        use SortKey::*;
        let rate = |r: Option<f64>| r.map(Figure::Rate);
        let money = |m: Option<crate::domain::Money>| m.map(|m| Figure::Minor(m.minor()));
        match self {
            Roi => rate(t.roi),
            Roas => rate(t.roas),
            Clicks => Some(Figure::Count(t.clicks)),
            UniqueClicks => Some(Figure::Count(t.unique_clicks)),
            Impressions => Some(Figure::Count(t.impressions)),
            Ctr => rate(t.ctr),
            Conversions => Some(Figure::Count(t.conversions)),
            ConversionRate => rate(t.conversion_rate),
            Revenue => money(t.revenue),
            NetRevenue => money(t.net_revenue),
            Refunds => money(t.refunds),
            Cost => money(t.cost),
            Epc => money(t.epc),
            Cpc => money(t.cpc),
            Cpa => money(t.cpa),
            Aov => money(t.aov),
            Engagements => Some(Figure::Count(t.engagements)),
            EngagementRate => rate(t.engagement_rate),
            Reach => Some(Figure::Count(t.reach)),
            PixelImpressions => Some(Figure::Count(t.pixel_impressions)),
            BotClicks => Some(Figure::Count(t.bot_clicks)),
            Previews => Some(Figure::Count(t.previews)),
            SuspiciousClicks => Some(Figure::Count(t.suspicious_clicks)),
        }
    }

    /// Sorts rows by this figure in `order`, missing (`null`) figures last either way; ties
    /// keep their order.
    pub fn sort<K>(self, order: Order, rows: &mut [Row<K>]) {
        rows.sort_by(|a, b| match (self.figure(&a.totals), self.figure(&b.totals)) {
            (Some(x), Some(y)) => {
                let (x, y) = match order {
                    Order::Desc => (y, x),
                    Order::Asc => (x, y),
                };
                x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
    }
}

/// What a report's rows are sorted by, and which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub order: Order,
}

impl Default for Sort {
    /// API.md's default: ROI, largest first.
    fn default() -> Self {
        Sort {
            key: SortKey::Roi,
            order: Order::Desc,
        }
    }
}

impl Sort {
    /// `?sort=` and `?order=` of a query; either may be absent.
    pub fn parse(key: Option<&str>, order: Option<&str>) -> Result<Self, ApiError> {
        Ok(Sort {
            key: key.map_or(Ok(SortKey::Roi), SortKey::parse)?,
            order: order.map_or(Ok(Order::Desc), Order::parse)?,
        })
    }

    pub fn rows<K>(self, rows: &mut [Row<K>]) {
        self.key.sort(self.order, rows);
    }
}

/// Which way rows are sorted: largest first (`desc`, the default) or smallest first (`asc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    #[default]
    Desc,
    Asc,
}

impl Order {
    /// The name in `?order=`.
    pub fn name(self) -> &'static str {
        match self {
            Order::Desc => "desc",
            Order::Asc => "asc",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "desc" => Ok(Order::Desc),
            "asc" => Ok(Order::Asc),
            _ => Err(ApiError::invalid("order must be desc or asc.")),
        }
    }

    /// The other way.
    pub fn flipped(self) -> Self {
        match self {
            Order::Desc => Order::Asc,
            Order::Asc => Order::Desc,
        }
    }
}

impl Serialize for SortKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Money;
    use crate::stats::Counts;

    fn row(name: &str, totals: Totals) -> Row<String> {
        Row {
            key: name.to_owned(),
            links: 1,
            totals,
        }
    }

    fn totals(clicks: u64, revenue_minor: i64, cost_minor: i64) -> Totals {
        Counts {
            clicks: u128::from(clicks),
            revenue: Money::from_minor(revenue_minor),
            cost: Money::from_minor(cost_minor),
            ..Counts::default()
        }
        .totals()
    }

    #[test]
    fn every_sort_key_names_a_figure_of_the_totals() {
        let json = serde_json::to_value(totals(1, 1, 1)).unwrap();
        for k in SortKey::ALL {
            assert!(json.get(k.name()).is_some(), "{}", k.name());
            assert_eq!(SortKey::parse(k.name()).unwrap(), k);
        }
        assert!(SortKey::parse("followers").is_err());
    }

    #[test]
    fn rows_sort_largest_first_with_missing_figures_last_and_money_exactly() {
        let mut rows = vec![
            row("free", totals(10, 0, 0)),
            // Money differing in the last minor unit of a large sum: exact, not float.
            row("a", totals(10, 9_007_199_254_740_993, 100)),
            row("b", totals(10, 9_007_199_254_740_992, 100)),
        ];
        SortKey::Revenue.sort(Order::Desc, &mut rows);
        let order: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(order, ["a", "b", "free"]);
        SortKey::Roi.sort(Order::Desc, &mut rows);
        assert_eq!(rows[2].key, "free", "no cost: roi is null and sorts last");
    }

    #[test]
    fn rows_sort_smallest_first_on_asking_with_missing_figures_still_last() {
        let mut rows = vec![
            row("free", totals(10, 0, 0)),
            row("dear", totals(10, 0, 900)),
            row("cheap", totals(10, 300, 100)),
        ];
        SortKey::Cpc.sort(Order::Asc, &mut rows);
        let order: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(order, ["free", "cheap", "dear"], "no cost is a cpc of 0.00");
        SortKey::Roi.sort(Order::Asc, &mut rows);
        let order: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(order, ["dear", "cheap", "free"], "roi is null without a cost: last");
        assert_eq!(Order::parse("asc").unwrap(), Order::Asc);
        assert_eq!(Order::parse("desc").unwrap().flipped(), Order::Asc);
        assert!(Order::parse("up").is_err());
    }
}
