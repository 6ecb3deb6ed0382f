//! Values in PostgreSQL's COPY text format.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::io::Write;

pub fn push_decimal(out: &mut Vec<u8>, d: Decimal) {
    let _ = write!(out, "{d}");
}

pub fn push_timestamp(out: &mut Vec<u8>, t: DateTime<Utc>) {
    let _ = write!(out, "{}", t.format("%Y-%m-%d %H:%M:%S%.6f+00"));
}

/// Text with COPY's escapes for backslash, tab, newline and carriage return.
pub fn push_text(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}
