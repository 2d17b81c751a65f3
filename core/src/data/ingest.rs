//! Documents → rows, for corpora that come as files (filings, opinions, letters): each file's
//! text — `.txt` and `.md` as they are, `.html`/`.htm` with tags, scripts and styles stripped,
//! entities decoded and block structure kept as line breaks, `.json`/`.jsonl` by a chosen text
//! field — becomes one row (or one per chunk of tokens) with a label, its relative path and its
//! size: the table `savant clean` reads. Walking a folder is the caller's (the CLI, or the
//! page's folder picker); core sees each file's relative path and bytes. Every file is written or
//! counted in the report under its reason.

use std::io::Write;

use regex::Regex;

use super::report::Report;
use crate::tokenize::TextTokenizer;
use crate::{Error, Result};

/// Where a document's label comes from.
#[derive(Debug, Clone)]
pub enum LabelFrom {
    /// No label column.
    None,
    /// The first-level folder (`billing/2024/a.txt` → `billing`); files at the top have none.
    Folder,
    /// The first capture group of a regex matched against the relative path (`/`-separated).
    Regex(Regex),
}

impl LabelFrom {
    /// `none`, `folder`, or `regex` with `pattern` (which must have a capture group).
    pub fn parse(kind: &str, pattern: Option<&str>) -> Result<LabelFrom> {
        match (kind, pattern) {
            ("none", _) => Ok(LabelFrom::None),
            ("folder", _) => Ok(LabelFrom::Folder),
            ("regex", Some(p)) => {
                let re = Regex::new(p).map_err(|e| Error::Option(format!("label regex '{p}': {e}")))?;
                if re.captures_len() < 2 {
                    return Err(Error::Option(format!("label regex '{p}' has no capture group for the label")));
                }
                Ok(LabelFrom::Regex(re))
            }
            ("regex", None) => Err(Error::Option("label_from regex needs a pattern (label_regex)".into())),
            (other, _) => Err(Error::Option(format!("label_from '{other}': expected none, folder or regex"))),
        }
    }

    fn label(&self, path: &str) -> Option<String> {
        match self {
            LabelFrom::None => None,
            LabelFrom::Folder => path.split_once('/').map(|(first, _)| first.to_string()),
            LabelFrom::Regex(re) => re.captures(path).and_then(|c| c.get(1)).map(|m| m.as_str().to_string()),
        }
    }
}

/// How documents become rows.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub label_from: LabelFrom,
    /// The field holding the text in `.json`/`.jsonl` documents.
    pub text_field: String,
    /// Rows of at most this many tokens (special tokens not counted), overlapping by
    /// `overlap`; `None`: one row per document.
    pub chunk_tokens: Option<usize>,
    pub overlap: usize,
}

/// One output row.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestRow {
    pub text: String,
    pub label: Option<String>,
    /// The file's path relative to the folder (`/`-separated), with `#N` for the N-th document
    /// of a `.json` array or `.jsonl` file.
    pub source: String,
    /// The file's size in bytes.
    pub bytes: u64,
    /// The chunk's index within its document (with `chunk_tokens`).
    pub chunk: Option<usize>,
}

impl IngestRow {
    /// The columns, in order: text, label (when `labelled`; empty when the file has none, which
    /// `savant clean` counts as a missing label), source, bytes, chunk (when chunking).
    pub fn columns(&self, labelled: bool) -> Vec<(&'static str, serde_json::Value)> {
        let mut out = vec![("text", serde_json::json!(self.text))];
        if labelled {
            out.push(("label", serde_json::json!(self.label.clone().unwrap_or_default())));
        }
        out.push(("source", serde_json::json!(self.source)));
        out.push(("bytes", serde_json::json!(self.bytes)));
        if let Some(chunk) = self.chunk {
            out.push(("chunk", serde_json::json!(chunk)));
        }
        out
    }
}

/// Writes ingested rows as CSV (every field a string) or JSONL (`bytes` and `chunk` numbers):
/// the CLI's output file and the page's table are the same bytes.
pub struct RowWriter<W: Write> {
    labelled: bool,
    out: Sink<W>,
}

enum Sink<W: Write> {
    Csv(Box<csv::Writer<W>>),
    Jsonl(W),
}

impl<W: Write> RowWriter<W> {
    /// `format`: CSV or JSONL (TSV is written as CSV's shape with tabs). `chunked`: rows carry
    /// the `chunk` column.
    pub fn new(out: W, format: super::Format, labelled: bool, chunked: bool) -> Result<RowWriter<W>> {
        let out = match format {
            super::Format::Jsonl => Sink::Jsonl(out),
            _ => {
                let mut w = csv::WriterBuilder::new().delimiter(format.delimiter()).from_writer(out);
                let mut header = vec!["text"];
                if labelled {
                    header.push("label");
                }
                header.extend(["source", "bytes"]);
                if chunked {
                    header.push("chunk");
                }
                w.write_record(&header).map_err(csv_error)?;
                Sink::Csv(Box::new(w))
            }
        };
        Ok(RowWriter { labelled, out })
    }

    pub fn write(&mut self, row: &IngestRow) -> Result<()> {
        let columns = row.columns(self.labelled);
        match &mut self.out {
            Sink::Csv(w) => {
                let field = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
                w.write_record(columns.iter().map(|(_, v)| field(v))).map_err(csv_error)
            }
            Sink::Jsonl(w) => {
                let object: serde_json::Map<String, serde_json::Value> =
                    columns.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                serde_json::to_writer(&mut *w, &object).map_err(|e| Error::Io(e.into()))?;
                w.write_all(b"\n")?;
                Ok(())
            }
        }
    }

    /// Flushes and hands back the underlying writer.
    pub fn finish(self) -> Result<W> {
        match self.out {
            Sink::Csv(w) => w.into_inner().map_err(|e| Error::Io(e.into_error())),
            Sink::Jsonl(mut w) => {
                w.flush()?;
                Ok(w)
            }
        }
    }
}

fn csv_error(e: csv::Error) -> Error {
    Error::Io(std::io::Error::other(e.to_string()))
}

/// The rows of a folder's files, one file at a time, and the report.
pub struct Ingest {
    options: IngestOptions,
    /// With `chunk_tokens`: the tokenizer that counts them (its truncation off).
    tokenizer: Option<TextTokenizer>,
    pub report: Report,
}

/// The document types read, by extension.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Html,
    Json,
    JsonLines,
}

fn kind(path: &str) -> Option<Kind> {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    match ext.as_str() {
        "txt" | "md" | "markdown" => Some(Kind::Text),
        "html" | "htm" | "xhtml" => Some(Kind::Html),
        "json" => Some(Kind::Json),
        "jsonl" | "ndjson" => Some(Kind::JsonLines),
        _ => None,
    }
}

impl Ingest {
    /// `source` names the folder in the report.
    pub fn new(options: IngestOptions, tokenizer: Option<TextTokenizer>, source: &str) -> Result<Ingest> {
        let tokenizer = match (options.chunk_tokens, tokenizer) {
            (None, _) => None,
            (Some(0), _) => return Err(Error::Option("chunk_tokens must be at least 1".into())),
            (Some(n), _) if options.overlap >= n => {
                return Err(Error::Option(format!(
                    "overlap ({}) must be less than chunk_tokens ({n})",
                    options.overlap
                )))
            }
            (Some(_), None) => return Err(Error::Option("chunk_tokens needs a tokenizer (a model)".into())),
            (Some(_), Some(mut t)) => {
                t.set_max_len(None)?;
                Some(t)
            }
        };
        Ok(Ingest { options, tokenizer, report: Report::new(source) })
    }

    /// Whether rows carry a label column.
    pub fn labelled(&self) -> bool {
        !matches!(self.options.label_from, LabelFrom::None)
    }

    /// A file the caller could not or would not read (unreadable, too large, a link out of the
    /// folder): counted under `reason`, with a warning naming it.
    pub fn skip(&mut self, path: &str, reason: &str, detail: &str) {
        self.report.rows_in += 1;
        self.report.drop_row(reason);
        self.report.warn(None, format!("{path}: {detail}"));
    }

    /// Whether a file of `size` bytes is read at all: one over `max_mib` MiB is counted as
    /// too_large before its bytes are (a 1 GB file is never loaded to be refused).
    pub fn admits(&mut self, path: &str, size: u64, max_mib: u64) -> bool {
        if size <= max_mib << 20 {
            return true;
        }
        self.skip(path, "too_large", &format!("{size} bytes, over the limit of {max_mib} MiB per file"));
        false
    }

    /// The rows of the file at `path` (relative, `/`-separated) with contents `bytes`.
    pub fn file(&mut self, path: &str, bytes: &[u8]) -> Result<Vec<IngestRow>> {
        self.report.rows_in += 1;
        let Some(kind) = kind(path) else {
            self.report.drop_row("unknown_type");
            return Ok(Vec::new());
        };
        // NUL bytes in the first 8 KiB: a binary file with a text-like name.
        if bytes[..bytes.len().min(8192)].contains(&0) {
            self.report.drop_row("binary");
            self.report.warn(None, format!("{path}: binary content (NUL bytes); skipped"));
            return Ok(Vec::new());
        }
        let Ok(text) = std::str::from_utf8(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes)) else {
            self.report.drop_row("not_utf8");
            self.report.warn(None, format!("{path}: not UTF-8 text; skipped"));
            return Ok(Vec::new());
        };
        let label = self.options.label_from.label(path);
        let documents: Vec<(String, String)> = match kind {
            Kind::Text => vec![(path.to_string(), text.to_string())],
            Kind::Html => vec![(path.to_string(), html_to_text(text))],
            Kind::Json | Kind::JsonLines => match self.json_documents(path, text, kind) {
                Some(docs) => docs,
                None => {
                    self.report.drop_row("malformed_json");
                    return Ok(Vec::new());
                }
            },
        };
        let mut rows = Vec::new();
        let mut written = false;
        for (source, text) in documents {
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            written = true;
            let chunks = self.chunks(text)?;
            let chunked = chunks.len() > 1;
            for (i, chunk) in chunks.into_iter().enumerate() {
                rows.push(IngestRow {
                    text: chunk,
                    label: label.clone(),
                    source: source.clone(),
                    bytes: bytes.len() as u64,
                    chunk: self.options.chunk_tokens.map(|_| i),
                });
            }
            if chunked {
                self.report.modified("split_into_chunks");
            }
        }
        if !written {
            self.report.drop_row("empty_text");
            return Ok(rows);
        }
        self.report.rows_out += 1;
        if let Some(l) = &label {
            *self.report.label_counts.entry(l.clone()).or_insert(0) += 1;
        }
        Ok(rows)
    }

    /// The documents of a `.json` (an object, or an array of them) or `.jsonl` file; `None`
    /// (with a warning) when it is not valid JSON or holds no text field.
    fn json_documents(&mut self, path: &str, text: &str, kind: Kind) -> Option<Vec<(String, String)>> {
        let field = self.options.text_field.clone();
        let values: Vec<serde_json::Value> = if kind == Kind::Json {
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Array(items)) => items,
                Ok(v) => vec![v],
                Err(e) => {
                    self.report.warn(None, format!("{path}: not valid JSON: {e}"));
                    return None;
                }
            }
        } else {
            let mut values = Vec::new();
            for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                match serde_json::from_str(line) {
                    Ok(v) => values.push(v),
                    Err(e) => {
                        self.report.warn(None, format!("{path}:{}: not valid JSON: {e}", n + 1));
                        return None;
                    }
                }
            }
            values
        };
        let many = values.len() > 1 || kind == Kind::JsonLines;
        let docs: Vec<(String, String)> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let text = v.get(&field)?.as_str()?;
                Some((if many { format!("{path}#{}", i + 1) } else { path.to_string() }, text.to_string()))
            })
            .collect();
        if docs.is_empty() {
            self.report.warn(None, format!("{path}: no document has a string field '{field}'"));
            return None;
        }
        Some(docs)
    }

    /// `text` whole, or cut into token windows at token boundaries.
    fn chunks(&self, text: &str) -> Result<Vec<String>> {
        let (Some(size), Some(tokenizer)) = (self.options.chunk_tokens, &self.tokenizer) else {
            return Ok(vec![text.to_string()]);
        };
        let spans = tokenizer.token_spans(text)?;
        if spans.len() <= size {
            return Ok(vec![text.to_string()]);
        }
        let step = size - self.options.overlap;
        let mut out = Vec::new();
        let mut start = 0;
        loop {
            let end = (start + size).min(spans.len());
            out.push(text[spans[start].0..spans[end - 1].1].to_string());
            if end == spans.len() {
                break;
            }
            start += step;
        }
        Ok(out)
    }
}

/// The text of an HTML document: tags removed; `script`, `style`, `noscript`, `template` and
/// comments dropped with their content; a line break at each block element (`p`, `div`, `br`,
/// `li`, headings, table rows, ...); entities decoded after the tags are gone (so `&lt;b&gt;` stays
/// the text `<b>`); spaces collapsed within lines and empty lines dropped. Malformed markup
/// degrades to text: a `<` that opens no tag is kept, an unclosed comment or script ends the
/// document.
pub fn html_to_text(html: &str) -> String {
    const DROPPED: [&str; 4] = ["script", "style", "noscript", "template"];
    const BLOCKS: [&str; 30] = [
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "table",
        "section",
        "article",
        "header",
        "footer",
        "blockquote",
        "pre",
        "hr",
        "dt",
        "dd",
        "dl",
        "title",
        "main",
        "nav",
        "aside",
        "td",
        "th",
    ];
    let lower = html.to_ascii_lowercase();
    let mut raw = String::with_capacity(html.len());
    let mut i = 0;
    while i < html.len() {
        let Some(offset) = html[i..].find('<') else {
            raw.push_str(&html[i..]);
            break;
        };
        raw.push_str(&html[i..i + offset]);
        i += offset;
        if lower[i..].starts_with("<!--") {
            i = lower[i..].find("-->").map_or(html.len(), |end| i + end + 3);
            continue;
        }
        let rest = &lower[i + 1..];
        let closing = rest.starts_with('/');
        let name: String = rest
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '!' || *c == '?')
            .collect();
        if name.is_empty() || !(rest.starts_with(|c: char| c.is_ascii_alphabetic() || "/!?".contains(c))) {
            // Not a tag (`a < b`): the character is text.
            raw.push('<');
            i += 1;
            continue;
        }
        let Some(end) = tag_end(&html[i..]) else { break };
        i += end;
        if !closing && DROPPED.contains(&name.as_str()) {
            let close = format!("</{name}");
            i = lower[i..].find(&close).map_or(html.len(), |at| {
                let after = i + at;
                tag_end(&html[after..]).map_or(html.len(), |e| after + e)
            });
            continue;
        }
        if BLOCKS.contains(&name.as_str()) {
            raw.push('\n');
        } else {
            raw.push(' ');
        }
    }
    let decoded = html_escape::decode_html_entities(&raw);
    decoded
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The length of the tag starting at `s[0] == '<'` up to and including its `>` (quoted
/// attribute values may hold `>`); `None` when it never closes.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_keeps_blocks_as_lines_and_drops_scripts_styles_and_comments() {
        let html = "<html><head><title>Opinion</title><style>p{color:red}</style>\
            <script>var x = '</p>';</script></head><body><h1>In re  Smith</h1>\
            <p>The court <b>held</b> that&nbsp;A &amp; B &lt;b&gt; owe $5.</p><!-- note <p>x</p> -->\
            <ul><li>one</li><li>two</li></ul>a < b and <a href=\"x>y\">link</a></body></html>";
        assert_eq!(
            html_to_text(html),
            "Opinion\nIn re Smith\nThe court held that A & B <b> owe $5.\none\ntwo\na < b and link"
        );
    }

    #[test]
    fn malformed_html_degrades_to_text() {
        assert_eq!(html_to_text("<p>open paragraph <b>bold"), "open paragraph bold");
        assert_eq!(html_to_text("text <!-- never closed"), "text");
        assert_eq!(html_to_text("before <script>never closed"), "before");
        assert_eq!(html_to_text("x <p class=\"unterminated"), "x");
        assert_eq!(html_to_text("1 <2 and 3> 2"), "1 <2 and 3> 2");
    }

    #[test]
    fn labels_come_from_the_first_folder_or_a_regex() {
        assert_eq!(LabelFrom::Folder.label("billing/2024/a.txt").as_deref(), Some("billing"));
        assert_eq!(LabelFrom::Folder.label("a.txt"), None);
        let re = LabelFrom::parse("regex", Some(r"^\w+/(\d{4})/")).unwrap();
        assert_eq!(re.label("billing/2024/a.txt").as_deref(), Some("2024"));
        assert!(LabelFrom::parse("regex", Some(r"\d+")).unwrap_err().to_string().contains("no capture group"));
        assert!(LabelFrom::parse("path", None).is_err());
    }
}
