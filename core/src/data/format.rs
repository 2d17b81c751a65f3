//! Table formats and reading rows from them, streaming.
//!
//! CSV and TSV go through the `csv` crate (quoted multi-line fields, CRLF/LF/CR, a UTF-8 BOM);
//! JSONL is one JSON object per line. Either way a row comes out as strings aligned with the
//! header, or as a [`Malformed`] record that says which line and why — a bad row never stops the
//! read and is never dropped silently.

use crate::error::{Error, Location, Result};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Tsv,
    Jsonl,
}

impl Format {
    /// The format a file name implies: `.csv`, `.tsv`/`.tab`, `.jsonl`/`.ndjson` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Format> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        Format::parse(&ext)
    }

    pub fn parse(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "tsv" | "tab" => Some(Format::Tsv),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Jsonl => "jsonl",
        }
    }

    pub(crate) fn delimiter(self) -> u8 {
        if self == Format::Tsv {
            b'\t'
        } else {
            b','
        }
    }
}

/// Default cap on one field: anything longer is a malformed row, not an allocation we follow.
pub const DEFAULT_MAX_FIELD_BYTES: usize = 8 << 20;

/// One data row, fields aligned with the reader's header.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based line where the record starts.
    pub line: u64,
    pub fields: Vec<String>,
}

/// A record that could not be read as a row; it is counted as `malformed` with its line.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed {
    pub line: u64,
    /// Short machine-readable kind: ragged, invalid_utf8, field_too_long, invalid_json,
    /// not_an_object, unterminated_quote.
    pub kind: &'static str,
    pub message: String,
}

pub type RowResult = std::result::Result<Row, Malformed>;

/// Counts the bytes and the `"` characters passing through, so the reader can report progress
/// and tell an unterminated quote from a well-formed last record, and remembers where the
/// newlines are so a record's byte offset can be turned into its line (the csv crate's own line
/// count skips newlines inside quoted fields).
struct Counting<R> {
    inner: R,
    bytes: u64,
    quotes: u64,
    /// Offsets of line breaks read but not yet passed by a record start (bounded by read-ahead):
    /// each `\n`, and each `\r` not followed by `\n` (old Mac files, mixed endings).
    newlines: VecDeque<u64>,
    lines_passed: u64,
    /// A `\r` that ended the previous chunk: a break unless the next chunk starts with `\n`.
    pending_cr: Option<u64>,
}

impl<R> Counting<R> {
    fn new(inner: R) -> Self {
        Counting { inner, bytes: 0, quotes: 0, newlines: VecDeque::new(), lines_passed: 0, pending_cr: None }
    }

    /// The 1-based line of byte `offset`; offsets must not go backwards between calls.
    fn line_at(&mut self, offset: u64) -> u64 {
        // `<=`: after a CRLF the next record "starts" at its `\n`, which ends the previous line.
        while self.newlines.front().is_some_and(|&n| n <= offset) {
            self.newlines.pop_front();
            self.lines_passed += 1;
        }
        self.lines_passed + 1
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = &buf[..n];
        self.quotes += memchr::memchr_iter(b'"', chunk).count() as u64;
        let base = self.bytes;
        if let Some(cr) = self.pending_cr.take() {
            if chunk.first() != Some(&b'\n') {
                self.newlines.push_back(cr);
            }
        }
        for i in memchr::memchr2_iter(b'\n', b'\r', chunk) {
            if chunk[i] == b'\n' {
                self.newlines.push_back(base + i as u64);
            } else if i + 1 == n {
                self.pending_cr = Some(base + i as u64);
            } else if chunk[i + 1] != b'\n' {
                self.newlines.push_back(base + i as u64);
            }
        }
        self.bytes += n as u64;
        Ok(n)
    }
}

enum Source<R: Read> {
    Delimited {
        reader: csv::Reader<Counting<R>>,
        /// One record of look-ahead: only at the end of the input do we know whether the last
        /// record was cut short by an unterminated quote.
        pending: Option<(csv::ByteRecord, u64)>,
        next: csv::ByteRecord,
    },
    Jsonl {
        reader: Counting<BufReader<R>>,
        line: u64,
        buf: Vec<u8>,
        /// Malformed lines met before the first object (which defines the columns).
        early: VecDeque<Malformed>,
        /// The first object, already parsed while reading the header.
        first: Option<Row>,
        /// Keys seen that are not columns, reported once each.
        extra_keys: BTreeMap<String, u64>,
    },
}

/// Reads a table row by row. Memory is one record (plus the header), whatever the file size.
pub struct TableReader<R: Read> {
    source_name: String,
    header: Vec<String>,
    /// The names as written, before duplicates were renamed: choosing a repeated name is an error.
    raw_header: Vec<String>,
    max_field_bytes: usize,
    src: Source<R>,
    /// Warnings about the header (renamed duplicates, extra JSON keys), for the report.
    pub notes: Vec<String>,
}

impl<R: Read> TableReader<R> {
    /// `source_name` names the input in every message (the file name, or "input").
    pub fn new(input: R, format: Format, source_name: &str) -> Result<Self> {
        Self::with_max_field(input, format, source_name, DEFAULT_MAX_FIELD_BYTES)
    }

    pub fn with_max_field(input: R, format: Format, source_name: &str, max_field_bytes: usize) -> Result<Self> {
        let here = |line| Location { source: source_name.to_string(), line };
        let mut notes = Vec::new();
        let (raw_header, src) = match format {
            Format::Csv | Format::Tsv => {
                let mut reader = csv::ReaderBuilder::new()
                    .delimiter(format.delimiter())
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(Counting::new(input));
                let mut first = csv::ByteRecord::new();
                let got = reader.read_byte_record(&mut first).map_err(|e| csv_error(source_name, e))?;
                if !got {
                    return Err(Error::Empty(here(None)));
                }
                let mut names = Vec::with_capacity(first.len());
                for (i, field) in first.iter().enumerate() {
                    let field = if i == 0 { strip_bom(field) } else { field };
                    let name = std::str::from_utf8(field).map_err(|_| {
                        Error::invalid(source_name, Some(1), format!("header column {} is not valid UTF-8", i + 1))
                    })?;
                    names.push(name.trim().to_string());
                }
                let src = Source::Delimited { reader, pending: None, next: csv::ByteRecord::new() };
                (names, src)
            }
            Format::Jsonl => {
                let mut reader = Counting::new(BufReader::with_capacity(1 << 16, input));
                let mut buf = Vec::new();
                let mut line = 0u64;
                let mut early = VecDeque::new();
                let mut saw_any = false;
                let header = loop {
                    buf.clear();
                    if reader.inner.read_until(b'\n', &mut buf)? == 0 {
                        break None;
                    }
                    reader.bytes += buf.len() as u64;
                    line += 1;
                    let body = trim_line(if line == 1 { strip_bom(&buf) } else { &buf });
                    if body.is_empty() {
                        continue;
                    }
                    saw_any = true;
                    match parse_object(body, line, max_field_bytes) {
                        Ok(obj) => break Some(obj),
                        Err(m) => early.push_back(m),
                    }
                };
                let Some(obj) = header else {
                    if saw_any {
                        return Err(Error::invalid(
                            source_name,
                            None,
                            "no line is a valid JSON object (expected one object per line)",
                        ));
                    }
                    return Err(Error::Empty(here(None)));
                };
                let names: Vec<String> = obj.keys().cloned().collect();
                let fields = obj.into_iter().map(|(_, v)| json_to_field(v)).collect();
                let src = Source::Jsonl {
                    reader,
                    line,
                    buf,
                    early,
                    first: Some(Row { line, fields }),
                    extra_keys: BTreeMap::new(),
                };
                (names, src)
            }
        };
        let header = dedupe_names(raw_header.clone(), &mut notes);
        Ok(TableReader { source_name: source_name.to_string(), header, raw_header, max_field_bytes, src, notes })
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Bytes consumed so far, for progress bars.
    pub fn bytes_read(&self) -> u64 {
        match &self.src {
            Source::Delimited { reader, .. } => reader.get_ref().bytes,
            Source::Jsonl { reader, .. } => reader.bytes,
        }
    }

    /// The index of the column called `name`; the error lists the columns that exist.
    pub fn column(&self, name: &str) -> Result<usize> {
        let repeats: Vec<usize> =
            self.raw_header.iter().enumerate().filter(|(_, h)| *h == name).map(|(i, _)| i + 1).collect();
        if repeats.len() > 1 {
            return Err(Error::AmbiguousColumn {
                at: Location { source: self.source_name.clone(), line: Some(1) },
                name: name.to_string(),
                positions: repeats,
            });
        }
        column_index(&self.header, name, &self.source_name)
    }

    /// The next row, a malformed record, or `None` at the end. An I/O error ends the read.
    pub fn next_row(&mut self) -> Result<Option<RowResult>> {
        let width = self.header.len();
        let max = self.max_field_bytes;
        match &mut self.src {
            Source::Delimited { reader, pending, next } => loop {
                let got = reader.read_byte_record(next).map_err(|e| csv_error(&self.source_name, e))?;
                if got {
                    let offset = next.position().map_or(0, |p| p.byte());
                    let line = reader.get_mut().line_at(offset);
                    let record = std::mem::take(next);
                    if let Some((prev, prev_line)) = pending.replace((record, line)) {
                        return Ok(Some(decode_record(&prev, prev_line, width, max)));
                    }
                    continue;
                }
                let Some((last, line)) = pending.take() else { return Ok(None) };
                // An odd number of quote characters means a quoted field was never closed: the
                // csv parser then reads to the end of the input as one field of the last record.
                let odd_quotes = reader.get_ref().quotes % 2 == 1;
                if odd_quotes && last.iter().any(|f| f.contains(&b'\n')) {
                    let message = format!(
                        "a quoted field opened in the record at line {line} is never closed; everything from there to the end of the input was read as one field"
                    );
                    return Ok(Some(Err(Malformed { line, kind: "unterminated_quote", message })));
                }
                return Ok(Some(decode_record(&last, line, width, max)));
            },
            Source::Jsonl { reader, line, buf, early, first, extra_keys } => {
                if let Some(m) = early.pop_front() {
                    return Ok(Some(Err(m)));
                }
                if let Some(row) = first.take() {
                    return Ok(Some(Ok(row)));
                }
                loop {
                    buf.clear();
                    if reader.inner.read_until(b'\n', buf)? == 0 {
                        if !extra_keys.is_empty() {
                            for (key, n) in std::mem::take(extra_keys) {
                                self.notes.push(format!(
                                    "key '{key}' is not in the first object's keys; its value was not kept ({n} rows)"
                                ));
                            }
                        }
                        return Ok(None);
                    }
                    reader.bytes += buf.len() as u64;
                    *line += 1;
                    let body = trim_line(buf);
                    if body.is_empty() {
                        continue;
                    }
                    let obj = match parse_object(body, *line, max) {
                        Ok(obj) => obj,
                        Err(m) => return Ok(Some(Err(m))),
                    };
                    let mut fields = vec![String::new(); width];
                    for (key, value) in obj {
                        match self.header.iter().position(|h| *h == key) {
                            Some(i) => fields[i] = json_to_field(value),
                            None => *extra_keys.entry(key).or_insert(0) += 1,
                        }
                    }
                    return Ok(Some(Ok(Row { line: *line, fields })));
                }
            }
        }
    }
}

/// Where a cleaning run gets its rows: a [`TableReader`], or a caller's own source (the CLI
/// reads on a second thread and hands rows over in batches).
pub trait RowSource {
    /// The next row, a malformed record, or `None` at the end.
    fn next_row(&mut self) -> Result<Option<RowResult>>;
    /// Input bytes consumed so far, for progress.
    fn bytes_read(&self) -> u64;
    /// Notes about the input (renamed header duplicates, ignored JSON keys) for the report.
    fn take_notes(&mut self) -> Vec<String>;
}

impl<R: Read> RowSource for TableReader<R> {
    fn next_row(&mut self) -> Result<Option<RowResult>> {
        TableReader::next_row(self)
    }

    fn bytes_read(&self) -> u64 {
        TableReader::bytes_read(self)
    }

    fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }
}

pub(crate) fn column_index(header: &[String], name: &str, source: &str) -> Result<usize> {
    let positions: Vec<usize> = header.iter().enumerate().filter(|(_, h)| *h == name).map(|(i, _)| i).collect();
    match positions.as_slice() {
        [i] => Ok(*i),
        [] => Err(Error::MissingColumn {
            at: Location { source: source.to_string(), line: Some(1) },
            name: name.to_string(),
            available: header.to_vec(),
        }),
        _ => Err(Error::AmbiguousColumn {
            at: Location { source: source.to_string(), line: Some(1) },
            name: name.to_string(),
            positions: positions.iter().map(|p| p + 1).collect(),
        }),
    }
}

/// Duplicate header names get pandas' suffixes (`x`, `x.1`, `x.2`), with a note; an empty name
/// becomes `column_N`. Selecting a renamed duplicate by its original name is then unambiguous.
fn dedupe_names(raw: Vec<String>, notes: &mut Vec<String>) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, name) in raw.into_iter().enumerate() {
        let name = if name.is_empty() { format!("column_{}", i + 1) } else { name };
        let count = seen.entry(name.clone()).or_insert(0);
        if *count == 0 {
            out.push(name);
        } else {
            let renamed = format!("{name}.{count}");
            notes.push(format!("header: column {} repeats the name '{name}'; it is read as '{renamed}'", i + 1));
            out.push(renamed);
        }
        *count += 1;
    }
    out
}

fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)
}

fn trim_line(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    let b = b.strip_suffix(b"\r").unwrap_or(b);
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    &b[start..]
}

fn csv_error(source: &str, e: csv::Error) -> Error {
    let line = e.position().map(|p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::Io(io),
        other => Error::invalid(source, line, format!("{other:?}")),
    }
}

fn decode_record(record: &csv::ByteRecord, line: u64, width: usize, max: usize) -> RowResult {
    if record.len() != width {
        let message = format!("expected {width} fields as in the header, found {}", record.len());
        return Err(Malformed { line, kind: "ragged", message });
    }
    let mut fields = Vec::with_capacity(width);
    for (i, raw) in record.iter().enumerate() {
        if raw.len() > max {
            let message = format!("field {} is {} bytes, over the {max}-byte limit", i + 1, raw.len());
            return Err(Malformed { line, kind: "field_too_long", message });
        }
        match std::str::from_utf8(raw) {
            Ok(s) => fields.push(s.to_string()),
            Err(e) => {
                let message = format!("field {} is not valid UTF-8 (bad byte at offset {})", i + 1, e.valid_up_to());
                return Err(Malformed { line, kind: "invalid_utf8", message });
            }
        }
    }
    Ok(Row { line, fields })
}

fn parse_object(
    body: &[u8],
    line: u64,
    max: usize,
) -> std::result::Result<serde_json::Map<String, serde_json::Value>, Malformed> {
    // A line holds several fields: refuse one over twice the field cap before parsing it at all.
    if body.len() > max.saturating_mul(2) {
        let message = format!("the line is {} bytes, over the limit", body.len());
        return Err(Malformed { line, kind: "field_too_long", message });
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => {
            if let Some((k, _)) = map.iter().find(|(_, v)| v.as_str().is_some_and(|s| s.len() > max)) {
                let message = format!("value of '{k}' is over the {max}-byte limit");
                return Err(Malformed { line, kind: "field_too_long", message });
            }
            Ok(map)
        }
        Ok(other) => {
            let message = format!("expected a JSON object, found {}", json_kind(&other));
            Err(Malformed { line, kind: "not_an_object", message })
        }
        Err(e) => Err(Malformed { line, kind: "invalid_json", message: format!("invalid JSON: {e}") }),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// JSON values become fields as pandas would print them: strings as is, null as missing (""),
/// numbers and booleans as text, arrays and objects as compact JSON.
fn json_to_field(v: serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Writes rows as CSV, TSV or JSONL (one object per row, keys in header order).
pub struct TableWriter<W: Write> {
    header: Vec<String>,
    out: WriterKind<W>,
    spreadsheet_safe: bool,
    /// The CSV/TSV header goes out with the first row (or at the end), once the settings are known.
    header_written: bool,
}

/// A CSV/TSV cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, or a leading tab or
/// carriage return: OWASP's CSV-injection list) gets a `'` in front, which spreadsheets show as
/// text; other cells are kept as they are.
pub fn spreadsheet_safe_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// A CSV/TSV table rewritten with [`spreadsheet_safe_cell`] on every field (header included),
/// and how many cells changed; JSONL is returned as it is (no spreadsheet opens it).
pub fn spreadsheet_safe(input: &[u8], format: Format, source: &str) -> Result<(Vec<u8>, usize)> {
    if format == Format::Jsonl {
        return Ok((input.to_vec(), 0));
    }
    let mut reader = TableReader::with_max_field(input, format, source, usize::MAX)?;
    let header = reader.header().to_vec();
    let mut changed = header.iter().filter(|c| spreadsheet_safe_cell(c) != c.as_str()).count();
    let mut writer = TableWriter::new(Vec::new(), format, &header)?.spreadsheet_safe(true);
    while let Some(row) = reader.next_row()? {
        let row = row.map_err(|m| Error::invalid(source, Some(m.line), m.message))?;
        changed += row.fields.iter().filter(|c| spreadsheet_safe_cell(c) != c.as_str()).count();
        writer.write(&row.fields)?;
    }
    Ok((writer.finish()?, changed))
}

enum WriterKind<W: Write> {
    /// Boxed: the csv writer carries its buffer state inline.
    Delimited(Box<csv::Writer<W>>),
    Jsonl(W),
}

impl<W: Write> TableWriter<W> {
    pub fn new(out: W, format: Format, header: &[String]) -> Result<Self> {
        let out = match format {
            Format::Csv | Format::Tsv => {
                let w = csv::WriterBuilder::new().delimiter(format.delimiter()).from_writer(out);
                WriterKind::Delimited(Box::new(w))
            }
            Format::Jsonl => WriterKind::Jsonl(out),
        };
        Ok(TableWriter { header: header.to_vec(), out, spreadsheet_safe: false, header_written: false })
    }

    fn write_header(&mut self) -> Result<()> {
        if self.header_written || matches!(self.out, WriterKind::Jsonl(_)) {
            return Ok(());
        }
        self.header_written = true;
        let header = std::mem::take(&mut self.header);
        let result = self.write_record(&header);
        self.header = header;
        result
    }

    /// CSV/TSV cells that a spreadsheet would run as formulas are written as text (see
    /// [`spreadsheet_safe_cell`]); JSONL is unchanged.
    pub fn spreadsheet_safe(mut self, on: bool) -> Self {
        self.spreadsheet_safe = on;
        self
    }

    pub fn write<S: AsRef<str>>(&mut self, fields: &[S]) -> Result<()> {
        self.write_header()?;
        self.write_record(fields)
    }

    fn write_record<S: AsRef<str>>(&mut self, fields: &[S]) -> Result<()> {
        let safe = self.spreadsheet_safe;
        match &mut self.out {
            WriterKind::Delimited(w) if safe => w
                .write_record(fields.iter().map(|f| spreadsheet_safe_cell(f.as_ref()).into_owned()))
                .map_err(write_error),
            WriterKind::Delimited(w) => {
                w.write_record(fields.iter().map(|f| f.as_ref().as_bytes())).map_err(write_error)
            }
            WriterKind::Jsonl(w) => {
                let mut obj = serde_json::Map::with_capacity(self.header.len());
                for (name, value) in self.header.iter().zip(fields) {
                    obj.insert(name.clone(), serde_json::Value::String(value.as_ref().to_string()));
                }
                serde_json::to_writer(&mut *w, &obj).map_err(|e| Error::Io(e.into()))?;
                w.write_all(b"\n")?;
                Ok(())
            }
        }
    }

    /// Flushes and hands back the underlying writer.
    pub fn finish(mut self) -> Result<W> {
        self.write_header()?;
        match self.out {
            WriterKind::Delimited(w) => w.into_inner().map_err(|e| Error::Io(e.into_error())),
            WriterKind::Jsonl(mut w) => {
                w.flush()?;
                Ok(w)
            }
        }
    }
}

fn write_error(e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::Io(io),
        other => Error::Io(std::io::Error::other(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], format: Format) -> (Vec<String>, Vec<RowResult>) {
        let mut r = TableReader::new(bytes, format, "t").unwrap();
        let mut rows = Vec::new();
        while let Some(row) = r.next_row().unwrap() {
            rows.push(row);
        }
        (r.header().to_vec(), rows)
    }

    fn ok_fields(rows: &[RowResult]) -> Vec<Vec<String>> {
        rows.iter().filter_map(|r| r.as_ref().ok()).map(|r| r.fields.clone()).collect()
    }

    #[test]
    fn csv_with_bom_crlf_and_multiline_quotes() {
        let data = b"\xEF\xBB\xBFtext,label\r\n\"line one\r\nline two, with comma\",a\r\nplain,b\r\n";
        let (header, rows) = read_all(data, Format::Csv);
        assert_eq!(header, ["text", "label"]);
        assert_eq!(
            ok_fields(&rows),
            [vec!["line one\r\nline two, with comma".to_string(), "a".into()], vec!["plain".into(), "b".into()]]
        );
        assert_eq!(rows[1].as_ref().unwrap().line, 4);
    }

    #[test]
    fn mixed_line_endings_and_tsv() {
        let (_, rows) = read_all(b"text\tlabel\nx\ta\r\ny\tb\rz\tc\n", Format::Tsv);
        assert_eq!(ok_fields(&rows).len(), 3);
        let lines: Vec<u64> = rows.iter().map(|r| r.as_ref().unwrap().line).collect();
        assert_eq!(lines, [2, 3, 4]);
        let data = b"text,label\r\nwindows,a\nunix,b\rmac,c\r\n\"quoted\r\nmulti\",d\n\"also\rmac\",e\rlast,f";
        let (_, rows) = read_all(data, Format::Csv);
        let lines: Vec<u64> = rows.iter().map(|r| r.as_ref().unwrap().line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 7, 9]);
    }

    #[test]
    fn line_numbers_survive_tiny_reads() {
        // A reader that hands out one byte at a time puts every `\r` at a chunk end.
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((&b, rest)) = self.0.split_first() else { return Ok(0) };
                buf[0] = b;
                self.0 = rest;
                Ok(1)
            }
        }
        let data = b"text,label\r\na,1\rb,2\r\nc,3\n";
        let mut r = TableReader::new(OneByte(data), Format::Csv, "t").unwrap();
        let mut lines = Vec::new();
        while let Some(row) = r.next_row().unwrap() {
            lines.push(row.unwrap().line);
        }
        assert_eq!(lines, [2, 3, 4]);
    }

    #[test]
    fn ragged_and_invalid_utf8_rows_are_malformed_with_lines() {
        let (_, rows) = read_all(b"text,label\na,b\nonly\nc,d,e\n\xff\xfe,x\ngood,y\n", Format::Csv);
        let kinds: Vec<_> = rows.iter().map(|r| r.as_ref().err().map(|m| (m.kind, m.line))).collect();
        assert_eq!(kinds, [None, Some(("ragged", 3)), Some(("ragged", 4)), Some(("invalid_utf8", 5)), None]);
    }

    #[test]
    fn unterminated_quote_is_reported_on_its_record() {
        let (_, rows) = read_all(b"text,label\na,b\n\"never closed,c\nmore\nlines,d\n", Format::Csv);
        assert_eq!(rows.len(), 2);
        let bad = rows[1].as_ref().unwrap_err();
        assert_eq!((bad.kind, bad.line), ("unterminated_quote", 3));
    }

    #[test]
    fn a_closed_quote_at_the_end_is_fine() {
        let (_, rows) = read_all(b"text,label\n\"two\nlines\",d", Format::Csv);
        assert_eq!(ok_fields(&rows), [vec!["two\nlines".to_string(), "d".into()]]);
    }

    #[test]
    fn field_limit() {
        let mut r = TableReader::with_max_field(&b"text,label\nabcdef,x\nab,y\n"[..], Format::Csv, "t", 4).unwrap();
        assert_eq!(r.next_row().unwrap().unwrap().unwrap_err().kind, "field_too_long");
        assert!(r.next_row().unwrap().unwrap().is_ok());
    }

    #[test]
    fn empty_input_is_an_error() {
        assert!(matches!(TableReader::new(&b""[..], Format::Csv, "t"), Err(Error::Empty(_))));
        assert!(matches!(TableReader::new(&b"\n\n"[..], Format::Jsonl, "t"), Err(Error::Empty(_))));
    }

    #[test]
    fn duplicate_header_names() {
        let r = TableReader::new(&b"text,label,text\na,b,c\n"[..], Format::Csv, "t").unwrap();
        assert_eq!(r.header(), ["text", "label", "text.1"]);
        assert!(matches!(r.column("text"), Err(Error::AmbiguousColumn { .. })));
        assert_eq!(r.column("label").unwrap(), 1);
        let e = r.column("note").unwrap_err().to_string();
        assert!(e.contains("no column named 'note'") && e.contains("text, label, text.1"), "{e}");
    }

    #[test]
    fn jsonl_rows_types_and_bad_lines() {
        let data = b"\xEF\xBB\xBF{\"text\": \"a\", \"label\": 1, \"meta\": {\"k\": [1]}}\n\n[1,2]\n{bad\n{\"label\": \"x\", \"text\": null, \"extra\": 3}\n";
        let mut r = TableReader::new(&data[..], Format::Jsonl, "t").unwrap();
        assert_eq!(r.header(), ["text", "label", "meta"]);
        let mut rows = Vec::new();
        while let Some(row) = r.next_row().unwrap() {
            rows.push(row);
        }
        assert_eq!(rows[0].as_ref().unwrap().fields, ["a", "1", "{\"k\":[1]}"]);
        assert_eq!(rows[1].as_ref().unwrap_err().kind, "not_an_object");
        assert_eq!(rows[1].as_ref().unwrap_err().line, 3);
        assert_eq!(rows[2].as_ref().unwrap_err().kind, "invalid_json");
        assert_eq!(rows[3].as_ref().unwrap().fields, ["", "x", ""]);
        assert!(r.notes.iter().any(|n| n.contains("'extra'")));
    }

    #[test]
    fn writers_round_trip() {
        let header = vec!["text".to_string(), "label".to_string()];
        for format in [Format::Csv, Format::Tsv, Format::Jsonl] {
            let mut w = TableWriter::new(Vec::new(), format, &header).unwrap();
            w.write(&["a \"quoted\",\nvalue", "l1"]).unwrap();
            w.write(&["b", "l2"]).unwrap();
            let bytes = w.finish().unwrap();
            let (h, rows) = read_all(&bytes, format);
            assert_eq!(h, header);
            assert_eq!(
                ok_fields(&rows),
                [vec!["a \"quoted\",\nvalue".to_string(), "l1".into()], vec!["b".into(), "l2".into()]]
            );
        }
    }
}
