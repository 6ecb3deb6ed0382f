//! Who a person is on the platform: e-mail, password policy, name, phone and role.
//! Raw input is parsed once into these types; an invalid value cannot exist past the edge.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Every account has exactly one role; it decides every screen and every server call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    EvOwner,
    Buyer,
    Cva,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::EvOwner, Role::Buyer, Role::Cva, Role::Admin];

    /// The value stored in the database and used in forms and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::EvOwner => "ev_owner",
            Role::Buyer => "buyer",
            Role::Cva => "cva",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| format!("“{s}” is not a role (expected ev_owner, buyer, cva or admin)."))
    }

    /// Human label.
    pub fn label(self) -> &'static str {
        match self {
            Role::EvOwner => "EV owner",
            Role::Buyer => "Buyer",
            Role::Cva => "Verifier (CVA)",
            Role::Admin => "Admin",
        }
    }

    /// Roles a person may choose for themselves at sign-up.
    pub fn self_service(self) -> bool {
        matches!(self, Role::EvOwner | Role::Buyer)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    Suspended,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Result<AccountStatus, String> {
        match s {
            "active" => Ok(AccountStatus::Active),
            "suspended" => Ok(AccountStatus::Suspended),
            other => Err(format!("“{other}” is not an account status.")),
        }
    }
}

/// A syntactically valid e-mail address, normalised to lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, String> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err("Enter your e-mail address.".into());
        }
        if s.len() > 254 {
            return Err("That e-mail address is too long (254 characters at most).".into());
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err("An e-mail address needs an @, like name@example.com.".into());
        };
        let valid_local = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let valid_domain = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !valid_local || !valid_domain {
            return Err("That does not look like an e-mail address (name@example.com).".into());
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password that meets the policy (NIST 800-63B: length, not a trivial repeat).
/// Deliberately neither `Serialize` nor `Display`: it never leaves the server function.
#[derive(Clone)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str, email: Option<&Email>) -> Result<Password, String> {
        let n = raw.chars().count();
        if n < Self::MIN_CHARS {
            return Err(format!(
                "Use at least {} characters (you typed {n}).",
                Self::MIN_CHARS
            ));
        }
        if n > Self::MAX_CHARS {
            return Err(format!("Use at most {} characters.", Self::MAX_CHARS));
        }
        let mut distinct: Vec<char> = raw.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 4 {
            return Err(
                "That password is too easy to guess; mix more different characters.".into(),
            );
        }
        if let Some(email) = email {
            let name = email.as_str().split('@').next().unwrap_or_default();
            // Short names ("an", "vy") would forbid too many passwords; longer ones are guessable.
            let contains_name = name.chars().count() >= 4 && raw.to_lowercase().contains(name);
            if raw.eq_ignore_ascii_case(email.as_str()) || contains_name {
                return Err("Your password must not contain your e-mail name.".into());
            }
        }
        Ok(Password(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A person's display name: trimmed, 1–100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullName(String);

/// Characters that change how text around them reads without showing themselves: bidirectional
/// overrides and isolates (a name that displays backwards), zero-width spaces and joiners (two
/// names that look the same), the byte-order mark. A name, on a certificate above all, is read
/// by people and must be what it looks like.
pub fn is_invisible_formatting(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' // zero-width space, non-joiner, joiner; LRM, RLM
        | '\u{202A}'..='\u{202E}' // embeddings and overrides
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}' // isolates
        | '\u{061C}' // Arabic letter mark
        | '\u{FEFF}' // byte-order mark, zero-width no-break space
        | '\u{00AD}' // soft hyphen
    )
}

impl FullName {
    pub fn parse(raw: &str) -> Result<FullName, String> {
        let s = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if s.is_empty() {
            return Err("Enter your full name.".into());
        }
        if s.chars().count() > 100 {
            return Err("A name can be 100 characters at most.".into());
        }
        if s.chars().any(char::is_control) {
            return Err("A name cannot contain control characters.".into());
        }
        if let Some(c) = s.chars().find(|c| is_invisible_formatting(*c)) {
            return Err(format!(
                "A name cannot contain invisible formatting characters (found U+{:04X}).",
                c as u32
            ));
        }
        Ok(FullName(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number: an optional leading +, then 7–15 digits; spaces, dots, dashes and
/// parentheses are accepted and dropped. Stored as `+` and digits, or digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Phone, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("Enter a phone number.".into());
        }
        let plus = s.starts_with('+');
        let body = if plus { &s[1..] } else { s };
        if let Some(bad) = body
            .chars()
            .find(|c| !(c.is_ascii_digit() || " .-()".contains(*c)))
        {
            return Err(format!(
                "A phone number can hold digits, spaces, dashes and a leading + only (found “{bad}”)."
            ));
        }
        let digits: String = body.chars().filter(char::is_ascii_digit).collect();
        if !(7..=15).contains(&digits.len()) {
            return Err(format!(
                "A phone number has 7 to 15 digits (this one has {}).",
                digits.len()
            ));
        }
        Ok(Phone(if plus { format!("+{digits}") } else { digits }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_they_look_like() {
        assert_eq!(
            FullName::parse("  Nguyễn   Văn Đạt ").unwrap().as_str(),
            "Nguyễn Văn Đạt"
        );
        for (name, code) in [
            ("Evil\u{202E}gnp.exe", "U+202E"),
            ("Ann\u{200B}Lee", "U+200B"),
            ("Ann\u{200D}Lee", "U+200D"),
            ("\u{2066}Ann\u{2069}", "U+2066"),
            ("\u{FEFF}Ann", "U+FEFF"),
        ] {
            let refused = FullName::parse(name).unwrap_err();
            assert!(refused.contains(code), "{name:?}: {refused}");
        }
    }

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(
            Email::parse("  An.Nguyen@Example.COM ").unwrap().as_str(),
            "an.nguyen@example.com"
        );
        for bad in [
            "",
            "plain",
            "a@b",
            "@example.com",
            "a@.com",
            "a..b@example.com",
            "a b@example.com",
            "a@exa_mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn password_policy() {
        let email = Email::parse("linh.tran@example.com").unwrap();
        assert!(Password::parse("short", None)
            .unwrap_err()
            .contains("at least 10"));
        assert!(Password::parse("aaaaaaaaaaaa", None).is_err());
        assert!(Password::parse("linh.tran-secret", Some(&email)).is_err());
        assert!(Password::parse("correct horse battery", Some(&email)).is_ok());
        assert!(Password::parse(&"x1".repeat(65), None).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("correct horse", None).unwrap()),
            "Password(***)"
        );
    }

    #[test]
    fn names_and_phones() {
        assert_eq!(
            FullName::parse("  Trần   Thị  Linh ").unwrap().as_str(),
            "Trần Thị Linh"
        );
        assert!(FullName::parse("   ").is_err());
        assert!(FullName::parse(&"n".repeat(101)).is_err());
        assert_eq!(
            Phone::parse("+84 (90) 123-4567").unwrap().as_str(),
            "+84901234567"
        );
        assert_eq!(Phone::parse("0901 234 567").unwrap().as_str(), "0901234567");
        assert!(Phone::parse("12345").unwrap_err().contains("has 5"));
        assert!(Phone::parse("+84 90x").unwrap_err().contains("“x”"));
    }

    #[test]
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()).unwrap(), r);
        }
        assert!(Role::parse("root").is_err());
        assert!(Role::EvOwner.self_service() && Role::Buyer.self_service());
        assert!(!Role::Cva.self_service() && !Role::Admin.self_service());
    }
}
