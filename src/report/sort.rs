//! The figures report rows sort by (`?sort=`), largest first.

use serde::Serialize;

use super::Row;
use crate::error::ApiError;
use crate::stats::Totals;

/// A figure rows can be sorted by, largest first.
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
}

/// A figure's value, compared within its kind: counts and money exactly, rates as numbers.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub enum Figure {
    Count(u64),
    Minor(i64),
    Rate(f64),
}

impl SortKey {
    pub const ALL: [SortKey; 18] = [
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
        }
    }

    /// Sorts rows by this figure, largest first, missing (`null`) last; ties keep their order.
    pub fn sort<K>(self, rows: &mut [Row<K>]) {
        rows.sort_by(|a, b| match (self.figure(&a.totals), self.figure(&b.totals)) {
            (Some(x), Some(y)) => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
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
        SortKey::Revenue.sort(&mut rows);
        let order: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(order, ["a", "b", "free"]);
        SortKey::Roi.sort(&mut rows);
        assert_eq!(rows[2].key, "free", "no cost: roi is null and sorts last");
    }
}
