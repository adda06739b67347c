//! The kind catalog: the one source of truth for what each kind of line is keyed by and which
//! metrics it accepts. `reimport kinds`, `reimport schema`, profile validation and every store
//! read from here, so adding a metric is a change in one place.

use std::fmt;

use serde::{Serialize, Serializer};

/// What a line describes. The name is the profile's `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Website,
    SearchEngine,
    RefererDomain,
    GeolocCountry,
    PageTree,
}

/// A dimension target: the key of a kind, or an optional attribute stored beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    WebsiteName,
    SearchEngineName,
    RefererDomainName,
    GeolocCountryIsocode,
    PageInfoName,
    PageInfoUrl,
}

/// A metric target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Visit,
    Duration,
    DVisitor,
    SCart,
    SCartValid,
    SCartValidAmount,
    EstimateValid,
    EstimateValidAmount,
    Hit,
    VisitIn,
    VisitOut,
    VisitOne,
}

/// How a metric's values are written and stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricUnit {
    /// A whole, non-negative number.
    Count,
    /// A whole number of seconds; `H:MM:SS` is accepted and converted.
    Seconds,
    /// A non-negative decimal, kept exact in the smallest unit it is written in.
    Amount,
}

const AUDIENCE_METRICS: &[Metric] = &[
    Metric::Visit,
    Metric::Duration,
    Metric::DVisitor,
    Metric::SCart,
    Metric::SCartValid,
    Metric::SCartValidAmount,
    Metric::EstimateValid,
    Metric::EstimateValidAmount,
];

const PAGE_METRICS: &[Metric] = &[
    Metric::Hit,
    Metric::Visit,
    Metric::Duration,
    Metric::VisitIn,
    Metric::VisitOut,
    Metric::VisitOne,
];

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Website,
        Kind::SearchEngine,
        Kind::RefererDomain,
        Kind::GeolocCountry,
        Kind::PageTree,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Website => "website",
            Kind::SearchEngine => "searchengine",
            Kind::RefererDomain => "refererdomain",
            Kind::GeolocCountry => "geoloccountry",
            Kind::PageTree => "pagetree",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The dimension whose value identifies a line of this kind.
    pub fn key_dimension(self) -> Dimension {
        match self {
            Kind::Website => Dimension::WebsiteName,
            Kind::SearchEngine => Dimension::SearchEngineName,
            Kind::RefererDomain => Dimension::RefererDomainName,
            Kind::GeolocCountry => Dimension::GeolocCountryIsocode,
            Kind::PageTree => Dimension::PageInfoName,
        }
    }

    /// Attributes a profile may map besides the key; stored with the line, not part of its identity.
    pub fn optional_dimensions(self) -> &'static [Dimension] {
        match self {
            Kind::PageTree => &[Dimension::PageInfoUrl],
            _ => &[],
        }
    }

    /// Every dimension a profile of this kind may map, key first.
    pub fn dimensions(self) -> Vec<Dimension> {
        let mut all = vec![self.key_dimension()];
        all.extend_from_slice(self.optional_dimensions());
        all
    }

    pub fn metrics(self) -> &'static [Metric] {
        match self {
            Kind::PageTree => PAGE_METRICS,
            _ => AUDIENCE_METRICS,
        }
    }

    pub fn allows_metric(self, metric: Metric) -> bool {
        self.metrics().contains(&metric)
    }

    pub fn allows_dimension(self, dimension: Dimension) -> bool {
        self.key_dimension() == dimension || self.optional_dimensions().contains(&dimension)
    }
}

impl Dimension {
    pub const ALL: [Dimension; 6] = [
        Dimension::WebsiteName,
        Dimension::SearchEngineName,
        Dimension::RefererDomainName,
        Dimension::GeolocCountryIsocode,
        Dimension::PageInfoName,
        Dimension::PageInfoUrl,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::WebsiteName => "website_name",
            Dimension::SearchEngineName => "searchengine_name",
            Dimension::RefererDomainName => "refererdomain_name",
            Dimension::GeolocCountryIsocode => "geoloccountry_isocode",
            Dimension::PageInfoName => "pageinfo_name",
            Dimension::PageInfoUrl => "pageinfo_url",
        }
    }

    pub fn parse(name: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == name)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl Metric {
    pub const ALL: [Metric; 12] = [
        Metric::Visit,
        Metric::Duration,
        Metric::DVisitor,
        Metric::SCart,
        Metric::SCartValid,
        Metric::SCartValidAmount,
        Metric::EstimateValid,
        Metric::EstimateValidAmount,
        Metric::Hit,
        Metric::VisitIn,
        Metric::VisitOut,
        Metric::VisitOne,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Visit => "visit",
            Metric::Duration => "duration",
            Metric::DVisitor => "dvisitor",
            Metric::SCart => "scart",
            Metric::SCartValid => "scartvalid",
            Metric::SCartValidAmount => "scartvalidamount",
            Metric::EstimateValid => "estimatevalid",
            Metric::EstimateValidAmount => "estimatevalidamount",
            Metric::Hit => "hit",
            Metric::VisitIn => "visitin",
            Metric::VisitOut => "visitout",
            Metric::VisitOne => "visitone",
        }
    }

    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == name)
    }

    pub fn unit(self) -> MetricUnit {
        match self {
            Metric::Duration => MetricUnit::Seconds,
            Metric::SCartValidAmount | Metric::EstimateValidAmount => MetricUnit::Amount,
            _ => MetricUnit::Count,
        }
    }

    /// What the metric means, as `reimport kinds` prints it.
    pub fn description(self) -> &'static str {
        match self {
            Metric::Visit => "visits",
            Metric::Duration => "time spent, in seconds",
            Metric::DVisitor => "daily unique visitors",
            Metric::SCart => "shopping carts",
            Metric::SCartValid => "sales",
            Metric::SCartValidAmount => "sales revenue (decimal)",
            Metric::EstimateValid => "leads",
            Metric::EstimateValidAmount => "lead revenue (decimal)",
            Metric::Hit => "page views",
            Metric::VisitIn => "entry visits",
            Metric::VisitOut => "exit visits",
            Metric::VisitOne => "bounce visits",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl MetricUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricUnit::Count => "count",
            MetricUnit::Seconds => "seconds",
            MetricUnit::Amount => "amount",
        }
    }
}

macro_rules! display_and_serialize_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    )*};
}
display_and_serialize_as_str!(Kind, Dimension, Metric, MetricUnit);

/// Joins names for messages: `a, b, c`.
pub(crate) fn list<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items.into_iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        for d in Dimension::ALL {
            assert_eq!(Dimension::parse(d.as_str()), Some(d));
            assert_eq!(Dimension::ALL[d.index()], d);
        }
        for m in Metric::ALL {
            assert_eq!(Metric::parse(m.as_str()), Some(m));
            assert_eq!(Metric::ALL[m.index()], m);
        }
    }

    #[test]
    fn catalog_matches_the_specification() {
        let audience = [
            "visit",
            "duration",
            "dvisitor",
            "scart",
            "scartvalid",
            "scartvalidamount",
            "estimatevalid",
            "estimatevalidamount",
        ];
        for (kind, key) in [
            (Kind::Website, "website_name"),
            (Kind::SearchEngine, "searchengine_name"),
            (Kind::RefererDomain, "refererdomain_name"),
            (Kind::GeolocCountry, "geoloccountry_isocode"),
        ] {
            assert_eq!(kind.key_dimension().as_str(), key);
            let names: Vec<_> = kind.metrics().iter().map(|m| m.as_str()).collect();
            assert_eq!(names, audience);
            assert!(kind.optional_dimensions().is_empty());
        }
        assert_eq!(Kind::PageTree.key_dimension().as_str(), "pageinfo_name");
        assert_eq!(Kind::PageTree.optional_dimensions(), &[Dimension::PageInfoUrl]);
        let names: Vec<_> = Kind::PageTree.metrics().iter().map(|m| m.as_str()).collect();
        assert_eq!(names, ["hit", "visit", "duration", "visitin", "visitout", "visitone"]);
        assert_eq!(Metric::Duration.unit(), MetricUnit::Seconds);
        assert_eq!(Metric::SCartValidAmount.unit(), MetricUnit::Amount);
        assert_eq!(Metric::EstimateValidAmount.unit(), MetricUnit::Amount);
        assert_eq!(Metric::Hit.unit(), MetricUnit::Count);
    }
}
