//! Reading an uploaded file as records, without holding it in memory: raw bytes are counted
//! and hashed, a BOM picks UTF-8 or UTF-16 (transcoded to UTF-8), the first bytes pick JSON
//! or CSV (and comma or semicolon), then records are handed over one at a time.

use encoding_rs_io::DecodeReaderBytesBuilder;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufReader, Read};
use std::rc::Rc;

/// How big one upload and one record of it may be. A record is bounded so that memory stays
/// flat whatever arrives: a 200 MB file without a newline (or a JSON string of 100 MB) is
/// refused after its first MiB instead of being gathered whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    pub max_file_bytes: u64,
    pub max_record_bytes: u64,
}

impl ReadLimits {
    /// No real trip or charging record comes near this; the read-ahead buffer (256 KiB) fits.
    pub const MAX_RECORD_BYTES: u64 = 1024 * 1024;
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_file_bytes: 512 * 1024 * 1024,
            max_record_bytes: Self::MAX_RECORD_BYTES,
        }
    }
}

/// What the readers have used of the limits, shared by the raw and the decoded reader.
struct Budget {
    limits: ReadLimits,
    file_bytes: Cell<u64>,
    record_bytes: Cell<u64>,
    /// The last line (CSV) or record (JSON) read whole.
    last_record: Cell<u32>,
    exceeded: Cell<Option<Refusal>>,
}

impl Budget {
    fn new(limits: ReadLimits) -> Rc<Budget> {
        Rc::new(Budget {
            limits,
            file_bytes: Cell::new(0),
            record_bytes: Cell::new(0),
            last_record: Cell::new(0),
            exceeded: Cell::new(None),
        })
    }

    /// A record was read whole: the next one starts with a fresh allowance.
    fn record_done(&self, line: u32) {
        self.record_bytes.set(0);
        self.last_record.set(line);
    }

    fn refuse(&self, refusal: Refusal) -> std::io::Error {
        let message = format!("{refusal:?}");
        self.exceeded.set(Some(refusal));
        std::io::Error::other(message)
    }

    /// The refusal a limit caused, else `other`.
    fn explain(&self, other: Refusal) -> Refusal {
        self.exceeded.take().unwrap_or(other)
    }
}

/// Stops the raw upload at the file limit.
struct FileLimited<R> {
    inner: R,
    budget: Rc<Budget>,
}

impl<R: Read> Read for FileLimited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let used = self.budget.file_bytes.get() + n as u64;
        self.budget.file_bytes.set(used);
        if used > self.budget.limits.max_file_bytes {
            return Err(self.budget.refuse(Refusal::TooLarge {
                limit: self.budget.limits.max_file_bytes,
            }));
        }
        Ok(n)
    }
}

/// Stops the decoded text when one record grows past its limit.
struct RecordLimited<R> {
    inner: R,
    budget: Rc<Budget>,
}

impl<R: Read> Read for RecordLimited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let used = self.budget.record_bytes.get() + n as u64;
        self.budget.record_bytes.set(used);
        if used > self.budget.limits.max_record_bytes + READ_AHEAD as u64 {
            return Err(self.budget.refuse(Refusal::RecordTooLong {
                after: self.budget.last_record.get(),
                limit: self.budget.limits.max_record_bytes,
            }));
        }
        Ok(n)
    }
}

/// The decoded text is read ahead in blocks of this size.
const READ_AHEAD: usize = 256 * 1024;

/// Counts and hashes the raw bytes as they are read.
pub struct Metered<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Metered<R> {
    pub fn new(inner: R) -> Self {
        Metered {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// What was read: size, hash and shape of the file.
pub struct FileFacts {
    pub bytes: u64,
    pub sha256: Vec<u8>,
    pub format: String,
    /// Numbers may use a decimal comma (semicolon-separated CSV).
    pub comma_decimal: bool,
}

/// Why a whole file was refused.
#[derive(Debug)]
pub enum Refusal {
    Empty,
    NotText,
    MissingColumns {
        missing: Vec<&'static str>,
        found: Vec<String>,
    },
    BadJson(String),
    Io(String),
    /// The consumer stopped (the database side failed); not the file's fault.
    Stopped,
    /// The file is over the configured maximum.
    TooLarge {
        limit: u64,
    },
    /// A record (a CSV line, a JSON element) is over the maximum; `after` is the last line or
    /// record read whole.
    RecordTooLong {
        after: u32,
        limit: u64,
    },
}

/// "512 MiB", "1 MiB", "300 KiB".
fn size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes >= 1024 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

impl Refusal {
    pub fn message(&self, what: &str) -> String {
        match self {
            Refusal::Empty => "The file is empty.".into(),
            Refusal::NotText => {
                "This is not a CSV or JSON text file (it is not UTF-8 or UTF-16 text).".into()
            }
            Refusal::MissingColumns { missing, found } => {
                let found = if found.is_empty() {
                    "none".to_owned()
                } else {
                    found.join(", ")
                };
                format!(
                    "This does not look like {what}: the columns {} are required but missing (columns found: {found}).",
                    missing.join(", ")
                )
            }
            Refusal::BadJson(e) => format!("The JSON cannot be read: {e}."),
            Refusal::Io(e) => format!("The upload was interrupted: {e}."),
            Refusal::Stopped => "The import stopped.".into(),
            Refusal::TooLarge { limit } => format!(
                "The file is larger than {}, the most one import takes. Split it into smaller files; nothing was imported.",
                size(*limit)
            ),
            Refusal::RecordTooLong { after: 0, limit } => format!(
                "The first record is longer than {}: this is not {what} (or a line ending is missing). Nothing was imported.",
                size(*limit)
            ),
            Refusal::RecordTooLong { after, limit } => format!(
                "The record after line {after} is longer than {}: no record of {what} is that long (is a line ending or a closing quote missing?). Nothing was imported.",
                size(*limit)
            ),
        }
    }
}

/// One record: its line (CSV) or position (JSON), and the values by field index.
pub type Values<'a> = [Option<&'a str>];

/// Maps a header to a field index, and lists the required fields by index and name.
pub struct Schema<'s> {
    pub field_of: &'s dyn Fn(&str) -> Option<usize>,
    pub fields: usize,
    pub required: &'s [(usize, &'static str)],
}

/// Reads every record, calling `on_record(line, values, comma_decimal)` with `values` None for a
/// row whose bytes are not text; `on_record` returns false to stop.
pub fn read_records<R: Read>(
    raw: R,
    limits: ReadLimits,
    schema: &Schema<'_>,
    on_record: impl FnMut(u32, Option<&Values<'_>>, bool) -> bool,
) -> Result<FileFacts, Refusal> {
    let budget = Budget::new(limits);
    read_within(raw, &budget, schema, on_record).map_err(|r| budget.explain(r))
}

fn read_within<R: Read>(
    raw: R,
    budget: &Rc<Budget>,
    schema: &Schema<'_>,
    mut on_record: impl FnMut(u32, Option<&Values<'_>>, bool) -> bool,
) -> Result<FileFacts, Refusal> {
    let mut metered = Metered::new(FileLimited {
        inner: raw,
        budget: budget.clone(),
    });
    let mut decoded = DecodeReaderBytesBuilder::new()
        .bom_sniffing(true)
        .strip_bom(true)
        .utf8_passthru(true)
        .build(&mut metered);
    // Look at the start of the file (at least its first line, up to 64 KiB) to tell the format;
    // the decoder may hand out only a few bytes per read while it sniffs the BOM.
    let mut head = Vec::with_capacity(64 * 1024);
    let mut buf = [0u8; 8192];
    while head.len() < 64 * 1024 && !head.contains(&b'\n') {
        let n = decoded
            .read(&mut buf)
            .map_err(|e| Refusal::Io(e.to_string()))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let Some(first) = head.iter().copied().find(|b| !b.is_ascii_whitespace()) else {
        return Err(Refusal::Empty);
    };
    if head.contains(&0) {
        return Err(Refusal::NotText);
    }
    let is_json = first == b'[' || first == b'{';
    let line_end = head.iter().position(|b| *b == b'\n').unwrap_or(head.len());
    let semicolons = head[..line_end].iter().filter(|b| **b == b';').count();
    let commas = head[..line_end].iter().filter(|b| **b == b',').count();
    let delimiter = if semicolons > commas { b';' } else { b',' };
    let decoded = RecordLimited {
        inner: std::io::Cursor::new(head).chain(decoded),
        budget: budget.clone(),
    };
    let mut reader = BufReader::with_capacity(READ_AHEAD, decoded);
    let (format, comma_decimal) = if is_json {
        read_json(&mut reader, budget, schema, &mut on_record)?;
        ("json".to_owned(), false)
    } else {
        read_csv(&mut reader, budget, delimiter, schema, &mut on_record)?;
        (
            if delimiter == b';' { "csv;" } else { "csv" }.to_owned(),
            delimiter == b';',
        )
    };
    drop(reader);
    Ok(FileFacts {
        bytes: metered.bytes,
        sha256: metered.hasher.finalize().to_vec(),
        format,
        comma_decimal,
    })
}

fn check_columns(schema: &Schema<'_>, headers: &[String]) -> Result<Vec<Option<usize>>, Refusal> {
    let columns: Vec<Option<usize>> = headers.iter().map(|h| (schema.field_of)(h)).collect();
    let missing: Vec<&'static str> = schema
        .required
        .iter()
        .filter(|(i, _)| !columns.contains(&Some(*i)))
        .map(|(_, name)| *name)
        .collect();
    if missing.is_empty() {
        Ok(columns)
    } else {
        let found = headers
            .iter()
            .take(12)
            .map(|h| h.trim().chars().take(30).collect())
            .collect();
        Err(Refusal::MissingColumns { missing, found })
    }
}

fn read_csv<R: Read>(
    reader: R,
    budget: &Budget,
    delimiter: u8,
    schema: &Schema<'_>,
    on_record: &mut impl FnMut(u32, Option<&Values<'_>>, bool) -> bool,
) -> Result<(), Refusal> {
    let comma_decimal = delimiter == b';';
    // Records end at '\n' only: with the default CRLF handling a record's position points at the
    // end of the previous line, and reports would name the wrong line. A trailing '\r' is
    // whitespace, trimmed with the rest.
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .terminator(csv::Terminator::Any(b'\n'))
        .flexible(true)
        .has_headers(true)
        .from_reader(reader);
    let headers = csv
        .byte_headers()
        .map_err(|e| Refusal::Io(e.to_string()))?
        .clone();
    let headers: Vec<String> = match headers
        .iter()
        .map(|h| std::str::from_utf8(h).map(str::to_owned))
        .collect()
    {
        Ok(h) => h,
        Err(_) => return Err(Refusal::NotText),
    };
    let columns = check_columns(schema, &headers)?;
    let mut record = csv::ByteRecord::new();
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => return Err(Refusal::Io(e.to_string())),
        }
        let line = record.position().map_or(0, |p| p.line()) as u32;
        budget.record_done(line);
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue; // blank line
        }
        let mut values: Vec<Option<&str>> = vec![None; schema.fields];
        let mut text_ok = true;
        for (i, field) in record.iter().enumerate() {
            if let Some(Some(idx)) = columns.get(i) {
                match std::str::from_utf8(field) {
                    Ok(s) if !s.trim().is_empty() => values[*idx] = Some(s),
                    Ok(_) => {}
                    Err(_) => text_ok = false,
                }
            }
        }
        let keep_going = on_record(line, text_ok.then_some(values.as_slice()), comma_decimal);
        if !keep_going {
            return Err(Refusal::Stopped);
        }
    }
}

/// JSON: an array of objects, or an object whose `trips` (or `sessions`, `data`, `items`) member
/// is that array. Elements are read one at a time.
fn read_json<R: Read>(
    reader: R,
    budget: &Budget,
    schema: &Schema<'_>,
    on_record: &mut impl FnMut(u32, Option<&Values<'_>>, bool) -> bool,
) -> Result<(), Refusal> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut state = JsonState {
        budget,
        schema,
        on_record,
        count: 0,
        stopped: false,
        refusal: None,
        checked: false,
    };
    let result = de::Deserializer::deserialize_any(&mut de, TopLevel(&mut state));
    if let Some(r) = state.refusal {
        return Err(r);
    }
    if state.stopped {
        return Err(Refusal::Stopped);
    }
    result.map_err(|e| Refusal::BadJson(e.to_string()))?;
    de.end().map_err(|e| Refusal::BadJson(e.to_string()))
}

struct JsonState<'a, F> {
    budget: &'a Budget,
    schema: &'a Schema<'a>,
    on_record: &'a mut F,
    count: u32,
    stopped: bool,
    refusal: Option<Refusal>,
    checked: bool,
}

struct TopLevel<'s, 'a, F>(&'s mut JsonState<'a, F>);

impl<'de, F: FnMut(u32, Option<&Values<'_>>, bool) -> bool> Visitor<'de> for TopLevel<'_, '_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records, or an object with a \"trips\" array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Elements(self.0).visit_seq(seq)
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if !found
                && matches!(
                    key.as_str(),
                    "trips"
                        | "sessions"
                        | "charging_sessions"
                        | "chargingSessions"
                        | "data"
                        | "items"
                )
            {
                map.next_value_seed(ElementsSeed(&mut *self.0))?;
                found = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if !found {
            return Err(de::Error::custom("the object has no \"trips\" array"));
        }
        Ok(())
    }
}

struct ElementsSeed<'s, 'a, F>(&'s mut JsonState<'a, F>);

impl<'de, F: FnMut(u32, Option<&Values<'_>>, bool) -> bool> DeserializeSeed<'de>
    for ElementsSeed<'_, '_, F>
{
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(Elements(self.0))
    }
}

struct Elements<'s, 'a, F>(&'s mut JsonState<'a, F>);

impl<'de, F: FnMut(u32, Option<&Values<'_>>, bool) -> bool> Visitor<'de> for Elements<'_, '_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let state = self.0;
        let mut values: Vec<Option<String>> = vec![None; state.schema.fields];
        while let Some(element) = seq.next_element::<BTreeMap<String, Box<RawValue>>>()? {
            state.count += 1;
            state.budget.record_done(state.count);
            if !state.checked {
                // A record may lack a field (that row is rejected); a first record with none
                // of the required fields means this is not the kind of data expected.
                let keys: Vec<String> = element.keys().cloned().collect();
                if let Err(Refusal::MissingColumns { missing, found }) =
                    check_columns(state.schema, &keys)
                {
                    if missing.len() == state.schema.required.len() {
                        state.refusal = Some(Refusal::MissingColumns { missing, found });
                        return Err(de::Error::custom("refused"));
                    }
                }
                state.checked = true;
            }
            values.iter_mut().for_each(|v| *v = None);
            for (key, raw) in &element {
                if let Some(idx) = (state.schema.field_of)(key) {
                    let text = raw.get();
                    values[idx] = if text == "null" {
                        None
                    } else if text.starts_with('"') {
                        serde_json::from_str::<String>(text)
                            .ok()
                            .filter(|s| !s.trim().is_empty())
                    } else {
                        Some(text.to_owned())
                    };
                }
            }
            let borrowed: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
            if !(state.on_record)(state.count, Some(&borrowed), false) {
                state.stopped = true;
                return Err(de::Error::custom("stopped"));
            }
        }
        if !state.checked {
            // An empty array: nothing to import, but nothing wrong either.
            state.checked = true;
        }
        Ok(())
    }
}
