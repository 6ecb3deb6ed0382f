//! Vehicles: the VIN (with its ISO 3779 check digit), and the checks on the other fields an
//! owner types when registering a car.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A vehicle identification number: letters and digits without I, O and Q, upper case, without
/// the spaces and dashes people type. Since model year 1981 it has exactly 17 characters (ISO
/// 3779); only older vehicles may have 11 to 16, and a shortened VIN would let one car be
/// registered twice. The check digit (9th character) is verified where the maker's region
/// computes it (see `uses_check_digit`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vin(String);

/// The first model year whose VINs all have 17 characters.
pub const SEVENTEEN_SINCE: i32 = 1981;

impl Vin {
    /// `model_year` decides how long the VIN must be; unknown, it must have 17 characters.
    pub fn parse(raw: &str, model_year: Option<i32>) -> Result<Vin, String> {
        let s: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect::<String>()
            .to_uppercase();
        if s.is_empty() {
            return Err("Enter the VIN (vehicle identification number).".into());
        }
        if let Some(bad) = s.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(format!(
                "A VIN holds letters and digits only (found “{bad}”)."
            ));
        }
        if let Some(bad) = s.chars().find(|c| matches!(c, 'I' | 'O' | 'Q')) {
            return Err(format!(
                "A VIN never contains the letter {bad} (it would be confused with a digit)."
            ));
        }
        let n = s.chars().count();
        let older = model_year.is_some_and(|y| y < SEVENTEEN_SINCE);
        if n != 17 && !(older && (11..=16).contains(&n)) {
            return Err(if older {
                format!("A VIN has 11 to 17 characters; this one has {n}.")
            } else {
                format!(
                    "A VIN has 17 characters (vehicles from {SEVENTEEN_SINCE} on); this one has {n}."
                )
            });
        }
        if n == 17 && uses_check_digit(&s) {
            let expected = check_digit(&s);
            let found = s.as_bytes()[8] as char;
            if found != expected {
                return Err(format!(
                    "This VIN’s check digit (9th character) is {found} but should be {expected}; please check for a typo."
                ));
            }
        }
        Ok(Vin(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether the VIN's maker computes the check digit: required in North America (first
/// character 1–5) and China (L); Korean makers (K) and VinFast (RLL) build to the same rule.
/// Elsewhere (Europe, Japan) the 9th character is the maker's own and is not checked.
fn uses_check_digit(vin: &str) -> bool {
    matches!(vin.as_bytes()[0], b'1'..=b'5' | b'L' | b'K') || vin.starts_with("RLL")
}

/// ISO 3779 / 49 CFR 565 check digit of a 17-character VIN.
fn check_digit(vin: &str) -> char {
    const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let value = |c: char| -> u32 {
        match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A' | 'J' => 1,
            'B' | 'K' | 'S' => 2,
            'C' | 'L' | 'T' => 3,
            'D' | 'M' | 'U' => 4,
            'E' | 'N' | 'V' => 5,
            'F' | 'W' => 6,
            'G' | 'P' | 'X' => 7,
            'H' | 'Y' => 8,
            'R' | 'Z' => 9,
            _ => 0,
        }
    };
    let sum: u32 = vin.chars().zip(WEIGHTS).map(|(c, w)| value(c) * w).sum();
    match sum % 11 {
        10 => 'X',
        d => char::from_digit(d, 10).expect("a digit"),
    }
}

/// Make or model: trimmed, 1–60 characters.
pub fn parse_name(raw: &str, what: &str) -> Result<String, String> {
    let s = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    match s.chars().count() {
        0 => Err(format!("Enter the {what}.")),
        1..=60 => Ok(s),
        _ => Err(format!("The {what} can be 60 characters at most.")),
    }
}

/// Model year: from 1990 (no earlier EVs worth crediting) to next year.
pub fn parse_year(raw: &str, this_year: i32) -> Result<i32, String> {
    let year: i32 = raw
        .trim()
        .parse()
        .map_err(|_| format!("The year is a number like {this_year}."))?;
    if year < 1990 || year > this_year + 1 {
        return Err(format!(
            "The model year must be between 1990 and {}.",
            this_year + 1
        ));
    }
    Ok(year)
}

/// Licence plate: letters, digits, spaces, dots and dashes; 2–15 characters; upper-cased.
pub fn parse_plate(raw: &str) -> Result<String, String> {
    let s = raw.trim().to_uppercase();
    if s.is_empty() {
        return Err("Enter the licence plate.".into());
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_alphanumeric() || " .-".contains(*c)))
    {
        return Err(format!(
            "A plate holds letters, digits, spaces, dots and dashes (found “{bad}”)."
        ));
    }
    if !(2..=15).contains(&s.chars().count()) {
        return Err("A plate has 2 to 15 characters.".into());
    }
    Ok(s)
}

/// A positive decimal typed by a person, with `.` or `,` as the decimal mark.
pub fn parse_positive(raw: &str, what: &str, unit: &str, max: Decimal) -> Result<Decimal, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(format!("Enter the {what} in {unit}."));
    }
    let normalised = if s.contains('.') {
        s.to_owned()
    } else {
        s.replacen(',', ".", 1)
    };
    let value = Decimal::from_str(&normalised)
        .map_err(|_| format!("The {what} is a number in {unit}, like 12.5."))?;
    if value <= Decimal::ZERO {
        return Err(format!("The {what} must be more than 0 {unit}."));
    }
    if value > max {
        return Err(format!("The {what} cannot be more than {max} {unit}."));
    }
    Ok(value.normalize())
}

/// A grid region code like `VN`: 2–10 characters of A–Z, 0–9 and `-`.
pub fn parse_region(raw: &str) -> Result<String, String> {
    let s = raw.trim().to_uppercase();
    let ok = (2..=10).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(s)
    } else {
        Err("Choose the grid region the vehicle charges in.".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vins_with_a_right_check_digit_pass() {
        // Well-known valid VINs.
        assert_eq!(
            Vin::parse("1M8GDM9AXKP042788", Some(2019))
                .unwrap()
                .as_str(),
            "1M8GDM9AXKP042788"
        );
        assert_eq!(
            Vin::parse("5yj3e1ea2kf 317000", Some(2019))
                .unwrap()
                .as_str(),
            "5YJ3E1EA2KF317000"
        );
        assert_eq!(
            Vin::parse("rll-v8ana2-pv000123", None).unwrap().as_str(),
            "RLLV8ANA2PV000123"
        );
        assert!(Vin::parse("11111111111111111", Some(2024)).is_ok());
        // A European maker's 9th character is its own.
        assert!(Vin::parse("WVWZZZ1JZXW000001", Some(1999)).is_ok());
    }

    #[test]
    fn bad_vins_are_refused_with_the_reason() {
        let year = Some(2019);
        assert!(Vin::parse("1M8GDM9A1KP042788", year)
            .unwrap_err()
            .contains("should be X"));
        assert!(Vin::parse("RLLV8ANA3PV000123", year)
            .unwrap_err()
            .contains("should be 2"));
        assert!(Vin::parse("1M8GDM9AXKP04278O", year)
            .unwrap_err()
            .contains("letter O"));
        assert!(Vin::parse("ABC123", year)
            .unwrap_err()
            .contains("this one has 6"));
        assert!(Vin::parse("1M8GDM9AXKP0427#8", year)
            .unwrap_err()
            .contains("“#”"));
        assert!(Vin::parse("", year).is_err());
        // A shortened VIN of a modern car (the same car twice) is refused…
        assert!(Vin::parse("1M8GDM9AXKP0427", year)
            .unwrap_err()
            .contains("17 characters (vehicles from 1981 on); this one has 15"));
        assert!(Vin::parse("1M8GDM9AXKP0427", None).is_err());
        // …while older vehicles have 11 to 17, with no check digit below 17.
        assert!(Vin::parse("WDB12345678", Some(1975)).is_ok());
        assert!(Vin::parse("WDB1234567", Some(1975))
            .unwrap_err()
            .contains("11 to 17 characters; this one has 10"));
    }

    #[test]
    fn other_vehicle_fields() {
        assert_eq!(parse_year("2023", 2026), Ok(2023));
        assert!(parse_year("2028", 2026).is_err());
        assert!(parse_year("twenty", 2026).is_err());
        assert_eq!(parse_plate(" 51h-123.45 ").unwrap(), "51H-123.45");
        assert!(parse_plate("51H/12345").is_err());
        assert_eq!(
            parse_positive("15,6", "efficiency", "kWh/100 km", Decimal::from(100)).unwrap(),
            Decimal::new(156, 1)
        );
        assert!(parse_positive("0", "battery", "kWh", Decimal::from(500)).is_err());
        assert!(parse_positive("501", "battery", "kWh", Decimal::from(500)).is_err());
        assert_eq!(parse_region(" vn "), Ok("VN".to_owned()));
        assert!(parse_region("Viet Nam").is_err());
        assert_eq!(parse_name("  VinFast  ", "make"), Ok("VinFast".to_owned()));
    }
}
