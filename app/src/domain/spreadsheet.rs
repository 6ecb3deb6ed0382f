//! Cells of the CSV files people download and open in a spreadsheet: text that a spreadsheet
//! would run as a formula (a name typed as `=HYPERLINK(…)`) is kept as text.

use std::borrow::Cow;

/// The cell as a spreadsheet shows it as text: one that starts like a formula (`=`, `+`, `-`,
/// `@`, a tab or a carriage return) gets a leading `'`, except a plain number such as `-12.5`,
/// which is a number either way.
pub fn safe_cell(cell: &str) -> Cow<'_, str> {
    let formula_like = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula_like && !is_plain_number(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Every cell of a record through `safe_cell`, ready for a CSV writer.
pub fn safe_record<S: AsRef<str>>(cells: impl IntoIterator<Item = S>) -> Vec<String> {
    cells
        .into_iter()
        .map(|c| safe_cell(c.as_ref()).into_owned())
        .collect()
}

/// `-12`, `-12.5`: an optional minus, digits, an optional point and digits.
fn is_plain_number(cell: &str) -> bool {
    let digits = cell.strip_prefix('-').unwrap_or(cell);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_stay_text_and_numbers_stay_numbers() {
        let cases = [
            (
                "=HYPERLINK(\"http://evil.example\",\"Click\")",
                "'=HYPERLINK(\"http://evil.example\",\"Click\")",
            ),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-", "'-"),
            ("-.5", "'-.5"),
            ("-12.5", "-12.5"),
            ("-12", "-12"),
            ("12", "12"),
            ("Nguyễn Văn Đạt", "Nguyễn Văn Đạt"),
            ("a=b", "a=b"),
            ("", ""),
        ];
        for (cell, shown) in cases {
            assert_eq!(safe_cell(cell), shown, "{cell:?}");
        }
        assert_eq!(safe_record(["=1", "x"]), vec!["'=1", "x"]);
    }
}
