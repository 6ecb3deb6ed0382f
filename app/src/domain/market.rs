//! Marketplace inputs and how they read: quantities in tonnes with 3 decimals (whole kg),
//! prices per tonne in the platform currency, money shown with the currency's conventions, and
//! the search query that lives in the URL so a search can be shared.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::str::FromStr;

/// The most one listing or order may carry: 1,000,000 t.
pub const MAX_KG: i64 = 1_000_000_000;

pub use super::amount::{parse_money, parse_plain_amount, parse_tonnes};

/// "1.250 t" for 1,250 kg.
pub fn tonnes(kg: i64) -> String {
    let sign = if kg < 0 { "-" } else { "" };
    let kg = kg.unsigned_abs();
    format!("{sign}{}.{:03} t", group(kg / 1000, ','), kg % 1000)
}

/// Money in the platform currency, written the way its users write it: VND as "250.000 ₫"
/// (no minor unit shown unless there is one), USD as "$1,234.50", others as "EUR 1,234.50".
pub fn format_money(amount: Decimal, currency: &str) -> String {
    let negative = amount.is_sign_negative() && !amount.is_zero();
    let mut a = amount.abs();
    a.rescale(2);
    let whole = a.trunc();
    let cents = ((a - whole) * Decimal::from(100)).trunc();
    let whole: u64 = whole.try_into().unwrap_or(u64::MAX);
    let cents: u64 = cents.try_into().unwrap_or(0);
    let sign = if negative { "-" } else { "" };
    match currency {
        "VND" => {
            let mut s = format!("{sign}{}", group(whole, '.'));
            if cents != 0 {
                s.push_str(&format!(",{cents:02}"));
            }
            s + " ₫"
        }
        "USD" => format!("{sign}${}.{cents:02}", group(whole, ',')),
        other => format!("{sign}{other} {}.{cents:02}", group(whole, ',')),
    }
}

/// Money as an input shows it for editing: `format_money` without the currency's mark
/// ("250.000" in VND, "1,234.50" in USD), which the money inputs read back as the same amount.
pub fn money_plain(amount: Decimal, currency: &str) -> String {
    let shown = format_money(amount, currency);
    let shown = shown.trim_end_matches(" ₫").trim_start_matches('$');
    shown
        .strip_prefix(&format!("{currency} "))
        .unwrap_or(shown)
        .to_owned()
}

fn group(n: u64, sep: char) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// A fee rate (0.025) as people write it: "2.5 %".
pub fn percent(rate: Decimal) -> String {
    format!("{} %", (rate * Decimal::from(100)).normalize())
}

/// Reads a fee written in percent ("2.5") as a rate (0.025).
pub fn parse_percent(raw: &str) -> Result<Decimal, String> {
    let s = raw.trim().trim_end_matches('%').trim();
    let d = Decimal::from_str(s).map_err(|_| format!("“{}” is not a percentage.", raw.trim()))?;
    if d.normalize().scale() > 3 {
        return Err("Use at most 3 decimals.".into());
    }
    if d < Decimal::ZERO || d > Decimal::from(20) {
        return Err("Enter a percentage between 0 and 20.".into());
    }
    Ok((d / Decimal::from(100)).normalize())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Sort {
    #[default]
    PriceLow,
    PriceHigh,
    Newest,
    Quantity,
}

impl Sort {
    pub const ALL: [Sort; 4] = [
        Sort::PriceLow,
        Sort::PriceHigh,
        Sort::Newest,
        Sort::Quantity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::PriceLow => "price",
            Sort::PriceHigh => "price_desc",
            Sort::Newest => "newest",
            Sort::Quantity => "quantity",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Sort::PriceLow => "Lowest price",
            Sort::PriceHigh => "Highest price",
            Sort::Newest => "Newest",
            Sort::Quantity => "Most available",
        }
    }

    fn parse(s: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListingKind {
    Fixed,
    Auction,
}

impl ListingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ListingKind::Fixed => "fixed",
            ListingKind::Auction => "auction",
        }
    }

    pub fn parse(s: &str) -> Option<ListingKind> {
        match s {
            "fixed" => Some(ListingKind::Fixed),
            "auction" => Some(ListingKind::Auction),
            _ => None,
        }
    }
}

pub const PAGE_SIZE: i64 = 50;

/// A marketplace search, parsed from the URL's query. Empty fields mean "any".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MarketQuery {
    /// Free text: listing number, region, vintage, description, seller name.
    pub text: String,
    pub region: Option<String>,
    pub vintage: Option<i32>,
    pub kind: Option<ListingKind>,
    pub seller: String,
    /// At least this much available, kg.
    pub min_kg: Option<i64>,
    pub min_price: Option<Decimal>,
    pub max_price: Option<Decimal>,
    pub sort: Sort,
    pub page: i64,
}

impl MarketQuery {
    /// Reads the URL's fields (`q`, `region`, `vintage`, `type`, `seller`, `min_qty` in
    /// tonnes, `min_price`, `max_price` in `currency`, `sort`, `page`). Each unreadable field
    /// is reported against its name.
    pub fn parse(
        params: &BTreeMap<String, String>,
        currency: &str,
    ) -> Result<MarketQuery, Vec<(String, String)>> {
        let get = |k: &str| {
            params
                .get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut errors = Vec::new();
        let mut q = MarketQuery {
            text: get("q").unwrap_or_default().chars().take(100).collect(),
            seller: get("seller")
                .unwrap_or_default()
                .chars()
                .take(100)
                .collect(),
            page: 1,
            ..MarketQuery::default()
        };
        if let Some(r) = get("region") {
            if r.len() <= 10 && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                q.region = Some(r.to_ascii_uppercase());
            } else {
                errors.push(("region".into(), "Choose a region from the list.".into()));
            }
        }
        if let Some(v) = get("vintage") {
            match v.parse::<i32>() {
                Ok(y) if (2000..=2100).contains(&y) => q.vintage = Some(y),
                _ => errors.push(("vintage".into(), "A vintage is a year, e.g. 2026.".into())),
            }
        }
        if let Some(t) = get("type") {
            match ListingKind::parse(&t) {
                Some(k) => q.kind = Some(k),
                None => errors.push(("type".into(), "Choose fixed price or auction.".into())),
            }
        }
        if let Some(m) = get("min_qty") {
            match parse_tonnes(&m) {
                Ok(kg) => q.min_kg = Some(kg),
                Err(e) => errors.push(("min_qty".into(), e)),
            }
        }
        for (field, slot) in [
            ("min_price", &mut q.min_price),
            ("max_price", &mut q.max_price),
        ] {
            if let Some(p) = get(field) {
                match parse_money(&p, currency) {
                    Ok(d) => *slot = Some(d),
                    Err(e) => errors.push((field.into(), e)),
                }
            }
        }
        if let (Some(lo), Some(hi)) = (q.min_price, q.max_price) {
            if lo > hi {
                errors.push((
                    "max_price".into(),
                    "The highest price is below the lowest.".into(),
                ));
            }
        }
        if let Some(s) = get("sort") {
            match Sort::parse(&s) {
                Some(s) => q.sort = s,
                None => errors.push(("sort".into(), "Choose an order from the list.".into())),
            }
        }
        if let Some(p) = get("page") {
            match p.parse::<i64>() {
                Ok(p) if (1..=10_000).contains(&p) => q.page = p,
                _ => errors.push((
                    "page".into(),
                    "The page must be a whole number from 1.".into(),
                )),
            }
        }
        if errors.is_empty() {
            Ok(q)
        } else {
            Err(errors)
        }
    }

    /// The query string of this search on `page` (fields left empty are left out), so every
    /// link and page of a search can be shared.
    pub fn to_query(&self, page: i64) -> String {
        let mut parts: Vec<(String, String)> = Vec::new();
        let mut push = |k: &str, v: String| parts.push((k.to_owned(), v));
        if !self.text.is_empty() {
            push("q", self.text.clone());
        }
        if let Some(r) = &self.region {
            push("region", r.clone());
        }
        if let Some(v) = self.vintage {
            push("vintage", v.to_string());
        }
        if let Some(k) = self.kind {
            push("type", k.as_str().to_owned());
        }
        if !self.seller.is_empty() {
            push("seller", self.seller.clone());
        }
        if let Some(kg) = self.min_kg {
            push("min_qty", tonnes_plain(kg));
        }
        if let Some(p) = self.min_price {
            push("min_price", p.normalize().to_string());
        }
        if let Some(p) = self.max_price {
            push("max_price", p.normalize().to_string());
        }
        if self.sort != Sort::default() {
            push("sort", self.sort.as_str().to_owned());
        }
        if page > 1 {
            push("page", page.to_string());
        }
        parts
            .into_iter()
            .map(|(k, v)| format!("{k}={}", query_encode(&v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// "1.25" for 1,250 kg: tonnes as typed into a form.
pub fn tonnes_plain(kg: i64) -> String {
    (Decimal::from(kg) / Decimal::from(1000))
        .normalize()
        .to_string()
}

fn query_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tonnes_are_written_as_they_read() {
        assert_eq!(tonnes(1250), "1.250 t");
        assert_eq!(tonnes(12_345_678), "12,345.678 t");
        assert_eq!(tonnes_plain(1250), "1.25");
    }

    #[test]
    fn money_shows_per_currency_and_reads_back() {
        assert_eq!(format_money(dec("1250000.00"), "VND"), "1.250.000 ₫");
        assert_eq!(format_money(dec("1250.50"), "VND"), "1.250,50 ₫");
        assert_eq!(format_money(dec("-5"), "VND"), "-5 ₫");
        assert_eq!(format_money(dec("1234.5"), "USD"), "$1,234.50");
        assert_eq!(format_money(dec("0.07"), "EUR"), "EUR 0.07");
        // What an input shows reads back as the same amount.
        for (amount, currency, plain) in [
            ("215000.00", "VND", "215.000"),
            ("1250000", "VND", "1.250.000"),
            ("1234.50", "USD", "1,234.50"),
            ("0.07", "EUR", "0.07"),
        ] {
            assert_eq!(money_plain(dec(amount), currency), plain);
            assert_eq!(parse_money(plain, currency).unwrap(), dec(amount));
        }
        for kg in [1, 10, 1250, 12_345_678] {
            assert_eq!(parse_tonnes(&tonnes(kg)), Ok(kg));
            assert_eq!(parse_tonnes(&tonnes_plain(kg)), Ok(kg));
        }
    }

    #[test]
    fn percent_reads_and_shows() {
        assert_eq!(parse_percent("2.5"), Ok(dec("0.025")));
        assert_eq!(parse_percent("0"), Ok(dec("0")));
        assert!(parse_percent("21").is_err());
        assert_eq!(percent(dec("0.025")), "2.5 %");
    }

    #[test]
    fn a_search_survives_its_url() {
        let q = MarketQuery::parse(
            &params(&[
                ("q", "solar café"),
                ("region", "vn"),
                ("vintage", "2026"),
                ("type", "fixed"),
                ("min_qty", "0.5"),
                ("min_price", "100000"),
                ("max_price", "300,000"),
                ("sort", "newest"),
                ("page", "3"),
            ]),
            "VND",
        )
        .unwrap();
        assert_eq!(q.region.as_deref(), Some("VN"));
        assert_eq!(q.min_kg, Some(500));
        assert_eq!(q.max_price, Some(dec("300000.00")));
        let url = q.to_query(3);
        assert_eq!(
            url,
            "q=solar+caf%C3%A9&region=VN&vintage=2026&type=fixed&min_qty=0.5&min_price=100000&max_price=300000&sort=newest&page=3"
        );
        let back: BTreeMap<String, String> = url
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                let v = v.replace('+', " ").replace("%C3%A9", "é");
                (k.to_owned(), v)
            })
            .collect();
        assert_eq!(MarketQuery::parse(&back, "VND").unwrap(), q);
        assert_eq!(MarketQuery::default().to_query(1), "");
    }

    #[test]
    fn a_bad_search_names_each_field() {
        let errors = MarketQuery::parse(
            &params(&[
                ("vintage", "last year"),
                ("min_price", "500"),
                ("max_price", "100"),
                ("sort", "random"),
                ("page", "0"),
            ]),
            "VND",
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["vintage", "max_price", "sort", "page"]);
    }
}
