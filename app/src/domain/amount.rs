//! How people write amounts of money and quantities of credits, and how the platform reads
//! them: the conventions the pages display are accepted, and anything that could mean two
//! different values is refused with the values it could mean — never silently read one way.
//!
//! - **VND** has no minor unit in practice: amounts are whole đồng. The pages show `215.000 ₫`,
//!   so a separator followed by groups of exactly three digits is a thousands separator —
//!   whether it is `.`, `,` or a space (`215.000`, `215,000`, `215 000` and `215000` are all
//!   215,000 ₫; `₫`, `đ`, `VND` may follow). A point or comma followed by anything else
//!   (`215.5`, `215,50`) is not whole đồng and is refused with what it could mean.
//! - **Other currencies** (USD, EUR, …) are shown as `$1,234.50`: commas (or spaces) group
//!   thousands, the point is the decimal mark, at most 2 decimals.
//! - **Tonnes** are shown as `1,250.500 t` (3 decimals, 1 kg): commas group thousands and the
//!   point is the decimal mark, so `1.250` is 1.25 t. A comma is read as a decimal mark where it
//!   cannot group thousands (`0,01`, `2,5`, `0,250`); `1,250` could be either and is refused.

use super::market::{format_money, MAX_KG};
use rust_decimal::Decimal;
use std::str::FromStr;

/// Amounts from this size on are refused (far above anything a wallet holds).
const MONEY_LIMIT: i64 = 1_000_000_000_000_000;

/// Reads an amount of money in `currency` as people write it (see the module's rules):
/// positive, with 2 decimals (VND: whole đồng).
pub fn parse_money(raw: &str, currency: &str) -> Result<Decimal, String> {
    let shown = raw.trim();
    if shown.is_empty() {
        return Err("Enter an amount.".into());
    }
    let lower = shown.to_lowercase();
    let body = strip_marks(&lower, money_marks(currency));
    let written = Written::read(body).ok_or_else(|| not_an_amount(shown, currency))?;
    let mut d = if currency == "VND" {
        read_dong(shown, &written)?
    } else {
        read_cents(shown, &written, currency)?
    };
    if written.negative || d.is_zero() {
        return Err("Enter an amount above zero.".into());
    }
    if d >= Decimal::from(MONEY_LIMIT) {
        return Err("That amount is too large.".into());
    }
    d.rescale(2);
    Ok(d)
}

/// Reads a quantity of credits written in tonnes ("1.25", "0,01", "1,250.5 t") as whole
/// kilograms (see the module's rules).
pub fn parse_tonnes(raw: &str) -> Result<i64, String> {
    let shown = raw.trim();
    if shown.is_empty() {
        return Err("Enter a quantity in tonnes, e.g. 1.250.".into());
    }
    let lower = shown.to_lowercase();
    let body = strip_marks(&lower, &["tonnes", "tonne", "tấn", "t"]);
    let written = Written::read(body).ok_or_else(|| not_a_quantity(shown))?;
    let d = read_tonnes(shown, &written)?;
    if d.normalize().scale() > 3 {
        return Err("Quantities go to 3 decimals (1 kg).".into());
    }
    let kg = d * Decimal::from(1000);
    if written.negative || kg <= Decimal::ZERO {
        return Err("Enter at least 0.001 t.".into());
    }
    if kg > Decimal::from(MAX_KG) {
        return Err("That is more than 1,000,000 t.".into());
    }
    Ok(i64::try_from(kg.trunc()).expect("bounded above"))
}

/// Reads an amount written by a machine rather than typed: a form's hidden field or an API
/// script echoing a `price_per_t` it was sent ("215000.00"). Digits and at most one decimal
/// point, at most 2 decimals, above zero — no grouping, so "215.000" is 215, never 215,000.
pub fn parse_plain_amount(raw: &str) -> Result<Decimal, String> {
    let s = raw.trim();
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || s.ends_with('.') {
        return Err(format!(
            "“{s}” is not a plain amount: send digits with a decimal point, e.g. 215000.00."
        ));
    }
    if fraction.len() > 2 {
        return Err("Amounts go to 2 decimals.".into());
    }
    let mut d = Decimal::from_str(s).map_err(|_| "That amount is too large.".to_owned())?;
    if d.is_zero() {
        return Err("Enter an amount above zero.".into());
    }
    if d >= Decimal::from(MONEY_LIMIT) {
        return Err("That amount is too large.".into());
    }
    d.rescale(2);
    Ok(d)
}

/// A separator between runs of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    Point,
    Comma,
    Space,
}

/// A number as written: runs of digits with one separator between each two.
#[derive(Debug)]
struct Written<'a> {
    negative: bool,
    groups: Vec<&'a str>,
    /// One fewer than `groups`.
    seps: Vec<Sep>,
}

impl<'a> Written<'a> {
    /// None when it holds anything but digits and single separators between them.
    fn read(s: &'a str) -> Option<Written<'a>> {
        let (negative, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, s),
        };
        let mut groups = Vec::new();
        let mut seps = Vec::new();
        let mut start = 0;
        for (i, c) in s.char_indices() {
            if c.is_ascii_digit() {
                continue;
            }
            let sep = match c {
                '.' => Sep::Point,
                ',' => Sep::Comma,
                ' ' | '\u{a0}' | '\u{202f}' => Sep::Space,
                _ => return None,
            };
            let group = &s[start..i];
            if group.is_empty() {
                return None;
            }
            groups.push(group);
            seps.push(sep);
            start = i + c.len_utf8();
        }
        let last = &s[start..];
        if last.is_empty() {
            return None;
        }
        groups.push(last);
        Some(Written {
            negative,
            groups,
            seps,
        })
    }

    /// The last run of digits, after the last separator (if any).
    fn split_last(&self) -> Option<(&[&'a str], &[Sep], Sep, &'a str)> {
        let last = *self.seps.last()?;
        let n = self.groups.len();
        Some((
            &self.groups[..n - 1],
            &self.seps[..n - 2],
            last,
            self.groups[n - 1],
        ))
    }
}

/// Groups of thousands as the pages write them: 1–3 digits (not starting with 0 unless alone),
/// then groups of exactly three, with the same separator throughout.
fn grouped(groups: &[&str], seps: &[Sep]) -> bool {
    let Some((first, rest)) = groups.split_first() else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    (1..=3).contains(&first.len())
        && !first.starts_with('0')
        && rest.iter().all(|g| g.len() == 3)
        && seps.windows(2).all(|w| w[0] == w[1])
}

fn joined(groups: &[&str]) -> Decimal {
    Decimal::from_str(&groups.concat()).unwrap_or(Decimal::MAX)
}

/// `whole.fraction` as written.
fn with_fraction(whole: &[&str], fraction: &str) -> Decimal {
    Decimal::from_str(&format!("{}.{fraction}", whole.concat())).unwrap_or(Decimal::MAX)
}

/// The currency marks a money input may carry before or after the number (lower case).
fn money_marks(currency: &str) -> &'static [&'static str] {
    match currency {
        "VND" => &["đồng", "dong", "vnđ", "vnd", "₫", "đ"],
        "USD" => &["us$", "usd", "$"],
        "EUR" => &["eur", "€"],
        _ => &[],
    }
}

/// `s` without one of `marks` at its end or its start (and the spaces next to it).
fn strip_marks<'a>(s: &'a str, marks: &[&str]) -> &'a str {
    let s = s.trim();
    for mark in marks {
        if let Some(rest) = s.strip_suffix(mark) {
            return rest.trim_end();
        }
        if let Some(rest) = s.strip_prefix(mark) {
            return rest.trim_start();
        }
    }
    s
}

fn not_an_amount(shown: &str, currency: &str) -> String {
    match currency {
        "VND" => format!("“{shown}” is not an amount: write whole đồng, e.g. 215.000 or 215000."),
        _ => format!("“{shown}” is not an amount: write e.g. 1,234.50 or 1234.50."),
    }
}

fn not_a_quantity(shown: &str) -> String {
    format!("“{shown}” is not a quantity: write tonnes with a decimal point, e.g. 1.25 or 0.01.")
}

/// VND: whole đồng, thousands grouped by `.`, `,` or spaces.
fn read_dong(shown: &str, w: &Written<'_>) -> Result<Decimal, String> {
    if grouped(&w.groups, &w.seps) {
        return Ok(joined(&w.groups));
    }
    let (head, head_seps, last, tail) = w
        .split_last()
        .expect("a single run of digits is always grouped");
    if last != Sep::Space && tail.len() <= 2 && !head_seps.is_empty() {
        // "1.250,50" or "1,250.00": grouped thousands, then a decimal mark of another kind.
        if grouped(head, head_seps) && head_seps[0] != last {
            let whole = joined(head);
            if tail.chars().all(|c| c == '0') {
                return Ok(whole);
            }
            return Err(format!(
                "“{shown}” is not a whole amount of đồng: did you mean {}?",
                format_money(whole, "VND")
            ));
        }
    }
    if last != Sep::Space && head.len() == 1 {
        return Err(not_whole_dong(shown, head[0], tail));
    }
    Err(format!(
        "“{shown}” is not an amount: write whole đồng, grouped by threes (215.000) or not at all (215000)."
    ))
}

/// "215.5" or "215,50": one point or comma that does not start a group of three. The writer
/// dropped zeros (215.500 ₫) or meant a fraction of a đồng (215 ₫): both are named.
fn not_whole_dong(shown: &str, whole: &str, fraction: &str) -> String {
    let mut meant: Vec<Decimal> = Vec::new();
    if fraction.len() <= 3 {
        let padded = format!("{whole}{fraction:0<3}");
        meant.push(Decimal::from_str(&padded).unwrap_or(Decimal::MAX));
    }
    let truncated = Decimal::from_str(whole).unwrap_or(Decimal::MAX);
    if !truncated.is_zero() {
        meant.push(truncated);
    }
    meant.retain(|d| !d.is_zero());
    meant.dedup();
    let money = |d: &Decimal| format_money(*d, "VND");
    match meant.as_slice() {
        [] => format!(
            "“{shown}” is not a whole amount of đồng (VND has no decimals): write e.g. 215.000 or 215000."
        ),
        [one] => format!(
            "“{shown}” is not a whole amount of đồng: did you mean {}?",
            money(one)
        ),
        [a, b, ..] => format!(
            "“{shown}” is not a whole amount of đồng: did you mean {} or {}?",
            money(a),
            money(b)
        ),
    }
}

/// Currencies with cents: commas or spaces group thousands, the point is the decimal mark.
fn read_cents(shown: &str, w: &Written<'_>, currency: &str) -> Result<Decimal, String> {
    let (whole, whole_seps, fraction) = match w.split_last() {
        Some((head, head_seps, Sep::Point, tail)) => (head, head_seps, Some(tail)),
        _ => (&w.groups[..], &w.seps[..], None),
    };
    if whole_seps.contains(&Sep::Point) {
        return Err(not_an_amount(shown, currency));
    }
    if !grouped(whole, whole_seps) {
        // "1,5": a comma where the decimal point belongs, or thousands with a zero dropped.
        if let (&[int, tail], &[Sep::Comma], None) = (whole, whole_seps, fraction) {
            if tail.len() < 3 && !int.starts_with('0') {
                let padded = Decimal::from_str(&format!("{int}{tail:0<3}")).unwrap_or(Decimal::MAX);
                return Err(format!(
                    "“{shown}” is not an amount in {currency}: the decimal mark is a point and commas group thousands. Did you mean {} or {}?",
                    format_money(with_fraction(&[int], tail), currency),
                    format_money(padded, currency),
                ));
            }
        }
        return Err(not_an_amount(shown, currency));
    }
    match fraction {
        Some(f) if f.len() > 2 => Err("Amounts go to 2 decimals.".into()),
        Some(f) => Ok(with_fraction(whole, f)),
        None => Ok(joined(whole)),
    }
}

/// Tonnes as the pages show them ("1,250.5"), with a comma as decimal mark where it cannot
/// be a thousands separator.
fn read_tonnes(shown: &str, w: &Written<'_>) -> Result<Decimal, String> {
    let Some((head, head_seps, last, tail)) = w.split_last() else {
        return Ok(joined(&w.groups));
    };
    match last {
        Sep::Point if !head_seps.contains(&Sep::Point) && grouped(head, head_seps) => {
            Ok(with_fraction(head, tail))
        }
        Sep::Comma if head_seps.contains(&Sep::Point) => Err(format!(
            "“{shown}” is not a quantity: tonnes are written with a decimal point and commas between thousands, e.g. 1,250.5 or 0.01."
        )),
        Sep::Comma if head.len() == 1 => {
            let whole = head[0];
            let could_group = tail.len() == 3 && whole.len() <= 3 && !whole.starts_with('0');
            if could_group {
                let thousands = joined(&[whole, tail]);
                let decimal = with_fraction(&[whole], tail).normalize();
                return Err(format!(
                    "“{shown}” could be {thousands} t or {decimal} t: write {thousands} or {decimal} (the decimal mark is a point)."
                ));
            }
            Ok(with_fraction(&[whole], tail))
        }
        Sep::Comma | Sep::Space if grouped(&w.groups, &w.seps) => Ok(joined(&w.groups)),
        _ => Err(not_a_quantity(shown)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    /// Every way of writing đồng the pages use is read as the same whole amount; what could mean
    /// two amounts is refused naming both.
    #[test]
    fn dong_as_written() {
        let read: &[(&str, &str)] = &[
            ("215000", "215000"),
            ("215.000", "215000"),
            ("215,000", "215000"),
            ("215 000", "215000"),
            ("215\u{a0}000", "215000"),
            ("215.000 ₫", "215000"),
            ("215.000₫", "215000"),
            ("215.000đ", "215000"),
            ("215.000 Đ", "215000"),
            ("215.000 VND", "215000"),
            ("VND 215,000", "215000"),
            ("₫215000", "215000"),
            ("  300.000  ", "300000"),
            ("1.250.000", "1250000"),
            ("1,250,000", "1250000"),
            ("1 250 000", "1250000"),
            ("10.000.000 ₫", "10000000"),
            ("215", "215"),
            ("5", "5"),
            // Cents of zero, after grouped thousands, are still whole đồng.
            ("1.250,00", "1250"),
            ("1,250.00", "1250"),
        ];
        for (input, value) in read {
            let mut want = dec(value);
            want.rescale(2);
            assert_eq!(parse_money(input, "VND"), Ok(want), "{input:?}");
        }
        let refused: &[(&str, &str)] = &[
            (
                "215.5",
                "“215.5” is not a whole amount of đồng: did you mean 215.500 ₫ or 215 ₫?",
            ),
            (
                "215,50",
                "“215,50” is not a whole amount of đồng: did you mean 215.500 ₫ or 215 ₫?",
            ),
            (
                "19.99",
                "“19.99” is not a whole amount of đồng: did you mean 19.990 ₫ or 19 ₫?",
            ),
            (
                "1234.567",
                "“1234.567” is not a whole amount of đồng: did you mean 1.234.567 ₫ or 1.234 ₫?",
            ),
            (
                "215.0000",
                "“215.0000” is not a whole amount of đồng: did you mean 215 ₫?",
            ),
            (
                "0.500",
                "“0.500” is not a whole amount of đồng: did you mean 500 ₫?",
            ),
            (
                "1.250,50",
                "“1.250,50” is not a whole amount of đồng: did you mean 1.250 ₫?",
            ),
            (
                "1.25.000",
                "“1.25.000” is not an amount: write whole đồng, grouped by threes (215.000) or not at all (215000).",
            ),
            (
                "21 5000",
                "“21 5000” is not an amount: write whole đồng, grouped by threes (215.000) or not at all (215000).",
            ),
            (
                "1.000,000",
                "“1.000,000” is not an amount: write whole đồng, grouped by threes (215.000) or not at all (215000).",
            ),
            (
                "215.000 $",
                "“215.000 $” is not an amount: write whole đồng, e.g. 215.000 or 215000.",
            ),
            ("1..000", "“1..000” is not an amount: write whole đồng, e.g. 215.000 or 215000."),
            (".5", "“.5” is not an amount: write whole đồng, e.g. 215.000 or 215000."),
            ("lots", "“lots” is not an amount: write whole đồng, e.g. 215.000 or 215000."),
            ("", "Enter an amount."),
            ("0", "Enter an amount above zero."),
            ("-300.000", "Enter an amount above zero."),
            ("1.000.000.000.000.000", "That amount is too large."),
        ];
        for (input, message) in refused {
            assert_eq!(
                parse_money(input, "VND"),
                Err((*message).to_owned()),
                "{input:?}"
            );
        }
    }

    /// Currencies with cents: the point is the decimal mark, commas group thousands.
    #[test]
    fn cents_as_written() {
        for (input, currency, value) in [
            ("19.99", "USD", "19.99"),
            ("$19.99", "USD", "19.99"),
            ("$1,234.50", "USD", "1234.50"),
            ("1234.5", "USD", "1234.50"),
            ("250,000", "USD", "250000.00"),
            ("250 000", "USD", "250000.00"),
            ("12", "USD", "12.00"),
            ("EUR 1,234.50", "EUR", "1234.50"),
            ("0.07", "EUR", "0.07"),
            ("1,234.50", "JPY", "1234.50"),
        ] {
            assert_eq!(parse_money(input, currency), Ok(dec(value)), "{input:?}");
        }
        for (input, message) in [
            (
                "1,5",
                "“1,5” is not an amount in USD: the decimal mark is a point and commas group thousands. Did you mean $1.50 or $1,500.00?",
            ),
            ("1.999", "Amounts go to 2 decimals."),
            (
                "1.234.56",
                "“1.234.56” is not an amount: write e.g. 1,234.50 or 1234.50.",
            ),
            (
                "12,34,567",
                "“12,34,567” is not an amount: write e.g. 1,234.50 or 1234.50.",
            ),
            ("0.00", "Enter an amount above zero."),
        ] {
            assert_eq!(
                parse_money(input, "USD"),
                Err(message.to_owned()),
                "{input:?}"
            );
        }
    }

    /// Tonnes as the pages show them (point decimal, comma thousands), and the comma as a
    /// decimal mark wherever it cannot be read as thousands.
    #[test]
    fn tonnes_as_written() {
        for (input, kg) in [
            ("1.25", 1_250),
            ("1.250", 1_250),
            ("1.250 t", 1_250),
            ("0.001", 1),
            (" 0.01 ", 10),
            ("0,01", 10),
            ("0,010", 10),
            ("2,5", 2_500),
            ("2,5 t", 2_500),
            ("12", 12_000),
            ("1,250.5", 1_250_500),
            ("12,345.678 t", 12_345_678),
            ("1 250", 1_250_000),
            ("1,000,000", 1_000_000_000),
            ("5 tấn", 5_000),
        ] {
            assert_eq!(parse_tonnes(input), Ok(kg), "{input:?}");
        }
        for (input, message) in [
            (
                "1,250",
                "“1,250” could be 1250 t or 1.25 t: write 1250 or 1.25 (the decimal mark is a point).",
            ),
            (
                "0,0005",
                "Quantities go to 3 decimals (1 kg).",
            ),
            ("0.0005", "Quantities go to 3 decimals (1 kg)."),
            (
                "1.250,5",
                "“1.250,5” is not a quantity: tonnes are written with a decimal point and commas between thousands, e.g. 1,250.5 or 0.01.",
            ),
            (
                "1.250.000",
                "“1.250.000” is not a quantity: write tonnes with a decimal point, e.g. 1.25 or 0.01.",
            ),
            (
                "12,50,0",
                "“12,50,0” is not a quantity: write tonnes with a decimal point, e.g. 1.25 or 0.01.",
            ),
            (
                "lots",
                "“lots” is not a quantity: write tonnes with a decimal point, e.g. 1.25 or 0.01.",
            ),
            ("", "Enter a quantity in tonnes, e.g. 1.250."),
            ("0", "Enter at least 0.001 t."),
            ("-1", "Enter at least 0.001 t."),
            ("1000001", "That is more than 1,000,000 t."),
        ] {
            assert_eq!(parse_tonnes(input), Err(message.to_owned()), "{input:?}");
        }
    }

    /// A price echoed by a form or a script is read exactly, with no grouping.
    #[test]
    fn plain_amounts_are_read_exactly() {
        assert_eq!(parse_plain_amount("215000.00"), Ok(dec("215000.00")));
        assert_eq!(parse_plain_amount(" 215000 "), Ok(dec("215000.00")));
        assert_eq!(parse_plain_amount("19.9"), Ok(dec("19.90")));
        assert_eq!(
            parse_plain_amount("215.000"),
            Err("Amounts go to 2 decimals.".into())
        );
        for bad in ["215,000", "", "1e5", "-5", "215_000", "215.", ".5"] {
            assert!(parse_plain_amount(bad).is_err(), "{bad:?}");
        }
        assert!(parse_plain_amount("0").is_err());
    }
}
