//! Offline PII/PHI redaction by pattern and checksum.
//!
//! [`Redactor`] replaces the identifiers that have a recognisable *shape* with a typed
//! placeholder such as `[EMAIL]` or `[CARD]`: e-mail addresses, URLs, IPv4/IPv6 addresses, card
//! numbers (Luhn-checked), IBANs (mod-97-checked), US social security numbers, phone numbers,
//! dates more specific than a year, medical record and account numbers introduced by a keyword,
//! and US ZIP codes in an address-like context. These cover the HIPAA Safe-Harbor identifiers
//! that patterns can catch.
//!
//! What it cannot catch: person names, street addresses and city names, employers, relatives,
//! device serials, vehicle or licence numbers without a keyword, photos, and any identifier
//! written in free text or an unusual format ("my account ends in four-two-one-seven"). This is
//! pattern matching: it lowers the amount of identifying text, it does not de-identify a data
//! set and it is not a compliance guarantee of any kind.
//!
//! Values that a publisher already masked, such as the CFPB's `XX/XX/XXXX` dates and `XXXX`
//! numbers, contain no digits and are left as they are.
//!
//! The code uses no file system, threads or clock, so it runs the same natively and in wasm.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use regex::{Captures, Regex};

/// A kind of identifier the redactor can replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PiiType {
    Email,
    Phone,
    Ssn,
    Date,
    Mrn,
    Url,
    Ip,
    Card,
    Iban,
    Zip,
    Account,
}

impl PiiType {
    pub const ALL: [PiiType; 11] = [
        PiiType::Email,
        PiiType::Phone,
        PiiType::Ssn,
        PiiType::Date,
        PiiType::Mrn,
        PiiType::Url,
        PiiType::Ip,
        PiiType::Card,
        PiiType::Iban,
        PiiType::Zip,
        PiiType::Account,
    ];

    /// The types named in `names` (case-insensitive; none named: all of them); an unknown name
    /// is refused with the known ones.
    pub fn parse_list(names: &[String]) -> crate::Result<Vec<PiiType>> {
        if names.is_empty() {
            return Ok(PiiType::ALL.to_vec());
        }
        let known = || PiiType::ALL.map(|t| t.name().to_lowercase()).join(", ");
        let parse = |t: &String| {
            PiiType::parse(t)
                .ok_or_else(|| crate::Error::Option(format!("redact: unknown type '{t}'; known: {}", known())))
        };
        names.iter().map(parse).collect()
    }

    /// The upper-case name, which is also the placeholder without its brackets.
    pub fn name(self) -> &'static str {
        match self {
            PiiType::Email => "EMAIL",
            PiiType::Phone => "PHONE",
            PiiType::Ssn => "SSN",
            PiiType::Date => "DATE",
            PiiType::Mrn => "MRN",
            PiiType::Url => "URL",
            PiiType::Ip => "IP",
            PiiType::Card => "CARD",
            PiiType::Iban => "IBAN",
            PiiType::Zip => "ZIP",
            PiiType::Account => "ACCOUNT",
        }
    }

    /// The text that replaces a match, e.g. `[EMAIL]`.
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiType::Email => "[EMAIL]",
            PiiType::Phone => "[PHONE]",
            PiiType::Ssn => "[SSN]",
            PiiType::Date => "[DATE]",
            PiiType::Mrn => "[MRN]",
            PiiType::Url => "[URL]",
            PiiType::Ip => "[IP]",
            PiiType::Card => "[CARD]",
            PiiType::Iban => "[IBAN]",
            PiiType::Zip => "[ZIP]",
            PiiType::Account => "[ACCOUNT]",
        }
    }

    /// Parses a name case-insensitively: `"email"`, `"EMAIL"`, `"Card"`.
    pub fn parse(s: &str) -> Option<PiiType> {
        let s = s.trim();
        PiiType::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(s))
    }

    /// Overlap priority, lowest first: a match of an earlier type claims its span. Specific,
    /// checksummed or structured shapes come before the looser numeric ones they contain.
    fn priority(self) -> u8 {
        match self {
            PiiType::Url => 0,
            PiiType::Email => 1,
            PiiType::Iban => 2,
            PiiType::Card => 3,
            PiiType::Ssn => 4,
            PiiType::Mrn => 5,
            PiiType::Account => 6,
            PiiType::Ip => 7,
            PiiType::Phone => 8,
            PiiType::Date => 9,
            PiiType::Zip => 10,
        }
    }
}

/// Compiled patterns for a set of types. Build once and reuse: cloning shares the compiled
/// regexes, and the value is `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Redactor {
    /// In priority order, so a rule's matches only compete with claims already made.
    rules: Vec<Rule>,
}

impl Redactor {
    /// Compiles the patterns for `types` (duplicates are ignored; an empty slice redacts nothing).
    pub fn new(types: &[PiiType]) -> Redactor {
        let mut types = types.to_vec();
        types.sort_by_key(|t| t.priority());
        types.dedup();
        Redactor { rules: types.into_iter().flat_map(rules_for).collect() }
    }

    /// Returns `text` with each match replaced by its type's placeholder, adding one to
    /// `counts[type]` per replacement. Borrows `text` when nothing matched.
    pub fn redact<'a>(&self, text: &'a str, counts: &mut BTreeMap<PiiType, u64>) -> Cow<'a, str> {
        if self.rules.is_empty() || text.is_empty() {
            return Cow::Borrowed(text);
        }
        let hints = Hints::of(text);
        // Accepted matches, sorted by start and never overlapping.
        let mut hits: Vec<Hit> = Vec::new();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for rule in &self.rules {
            if !hints.allow(rule.needs) {
                continue;
            }
            let mut pos = 0;
            while let Some(m) = rule.re.find_at(text, pos) {
                // Searching again from the match start yields the same match, with its groups;
                // doing it only on a match keeps the common no-match path allocation-free.
                let Some(caps) = rule.re.captures_at(text, m.start()) else {
                    break;
                };
                spans.clear();
                let accepted = (rule.check)(text, &caps, &mut spans);
                for &(start, end) in &spans {
                    claim(&mut hits, Hit { ty: rule.ty, start, end });
                }
                pos = if accepted || rule.skip_rejected {
                    m.end()
                } else {
                    // A shorter match may start inside a rejected one ("2.3.4.5" in "1.2.3.4.5").
                    next_char(text, m.start())
                };
            }
        }
        if hits.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for hit in &hits {
            out.push_str(&text[last..hit.start]);
            out.push_str(hit.ty.placeholder());
            last = hit.end;
            *counts.entry(hit.ty).or_insert(0) += 1;
        }
        out.push_str(&text[last..]);
        Cow::Owned(out)
    }
}

#[derive(Debug, Clone, Copy)]
struct Hit {
    ty: PiiType,
    start: usize,
    end: usize,
}

/// Adds `hit` unless it overlaps a match already claimed (by a higher-priority type, or an
/// earlier match of the same type).
fn claim(hits: &mut Vec<Hit>, hit: Hit) {
    if hit.start >= hit.end {
        return;
    }
    let at = hits.partition_point(|h| h.start < hit.start);
    let clashes_before = at > 0 && hits[at - 1].end > hit.start;
    let clashes_after = at < hits.len() && hits[at].start < hit.end;
    if !clashes_before && !clashes_after {
        hits.insert(at, hit);
    }
}

fn next_char(text: &str, at: usize) -> usize {
    at + text[at..].chars().next().map_or(1, char::len_utf8)
}

/// What a text must contain for a rule to be worth running. The digit counts are the fewest
/// digits any match of the rule has, so a row with a year and a price skips the card rule.
#[derive(Debug, Clone, Copy)]
enum Needs {
    Digits(u32),
    At,
    UrlStart,
    DigitsAndColon(u32),
}

/// Cheap facts about a text, gathered in one pass, that let most rules be skipped.
#[derive(Default)]
struct Hints {
    digits: u32,
    at: bool,
    colon: bool,
    url_start: bool,
}

impl Hints {
    fn of(text: &str) -> Hints {
        let bytes = text.as_bytes();
        let mut h = Hints::default();
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'0'..=b'9' => h.digits = h.digits.saturating_add(1),
                b'@' => h.at = true,
                b':' => {
                    h.colon = true;
                    h.url_start |= bytes[i + 1..].starts_with(b"//");
                }
                b'.' => h.url_start |= i >= 3 && bytes[i - 3..i].eq_ignore_ascii_case(b"www"),
                _ => {}
            }
        }
        h
    }

    fn allow(&self, needs: Needs) -> bool {
        match needs {
            Needs::Digits(n) => self.digits >= n,
            Needs::At => self.at,
            Needs::UrlStart => self.url_start,
            Needs::DigitsAndColon(n) => self.digits >= n && self.colon,
        }
    }
}

/// Validates a regex match, pushing the byte spans to replace; returns whether it accepted any.
type Check = fn(&str, &Captures<'_>, &mut Vec<(usize, usize)>) -> bool;

#[derive(Debug, Clone)]
struct Rule {
    ty: PiiType,
    needs: Needs,
    re: Regex,
    check: Check,
    /// Resume after a rejected match instead of one character into it. Used where the pattern
    /// matches a maximal run that the check already examined whole, so retrying inside it
    /// would only cost time (quadratic on a long digit string).
    skip_rejected: bool,
}

fn rule(ty: PiiType, needs: Needs, pattern: &str, check: Check) -> Rule {
    Rule { ty, needs, re: compile(pattern), check, skip_rejected: false }
}

/// Compiles a constant pattern. `\b` is made ASCII-only: the checks below handle Unicode
/// neighbours themselves, and a Unicode word boundary would stop the regex crate's fast DFA on
/// non-ASCII text.
fn compile(pattern: &str) -> Regex {
    Regex::new(&pattern.replace(r"\b", r"(?-u:\b)")).expect("valid pattern")
}

// Shared pattern pieces.
const MONTH: &str = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|(?-i:May|MAY)|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)";
const DAY: &str = r"(?:3[01]|[12][0-9]|0?[1-9])(?:st|nd|rd|th)?";
const YEAR: &str = r"(?:1[89][0-9]{2}|2[01][0-9]{2})";
/// Separators and filler words allowed between a keyword and its id ("MRN: ", "number is ").
const FILLER: &str = r"(?:[\s.:#=-]|\b(?:number|num|nbr|no|is)\b)*";
/// An id after a keyword: alphanumeric, optionally dash-separated.
const ID: &str = r"([A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)";
const STATE_CODES: &str = "AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC|PR|VI|GU|AS|MP";
const STATE_NAMES: &str = r"alabama|alaska|arizona|arkansas|california|colorado|connecticut|delaware|florida|georgia|hawaii|idaho|illinois|indiana|iowa|kansas|kentucky|louisiana|maine|maryland|massachusetts|michigan|minnesota|mississippi|missouri|montana|nebraska|nevada|new\s+hampshire|new\s+jersey|new\s+mexico|new\s+york|north\s+carolina|north\s+dakota|ohio|oklahoma|oregon|pennsylvania|rhode\s+island|south\s+carolina|south\s+dakota|tennessee|texas|utah|vermont|virginia|washington|west\s+virginia|wisconsin|wyoming|district\s+of\s+columbia|puerto\s+rico";

fn rules_for(ty: PiiType) -> Vec<Rule> {
    use Needs::*;
    match ty {
        PiiType::Url => vec![rule(
            ty,
            UrlStart,
            r#"(?i)\b(?:(?:https?|ftp)://[^\s<>"'`]+|www\.[\w-]+(?:\.[\w-]+)+(?:[/?#:][^\s<>"'`]*)?)"#,
            check_url,
        )],
        // A rejected address is glued to a word at its end; any match starting inside it would
        // end at the same place, so skip it whole.
        PiiType::Email => vec![Rule {
            skip_rejected: true,
            ..rule(ty, At, r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}", check_whole_alone)
        }],
        PiiType::Iban => vec![rule(
            ty,
            Digits(2),
            r"\b[A-Z]{2}[0-9]{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)",
            check_iban,
        )],
        PiiType::Card => {
            vec![Rule { skip_rejected: true, ..rule(ty, Digits(13), r"[0-9]+(?:[ -][0-9]+)*", check_card) }]
        }
        PiiType::Ssn => vec![
            rule(ty, Digits(9), r"\b[0-9]{3}(?:-[0-9]{2}-| [0-9]{2} )[0-9]{4}\b", check_ssn),
            rule(
                ty,
                Digits(9),
                &format!(r"(?i)\b(?:ssns?|ss\s*#|social\s+security\b){FILLER}([0-9]{{9}})"),
                check_ssn_after_keyword,
            ),
        ],
        PiiType::Mrn => vec![rule(
            ty,
            Digits(1),
            &format!(
                r"(?i)\b(?:mrn\b|mr\s*#|medical\s+records?\b|med\.?\s*rec\b|patient\s+(?:identifier|id)\b){FILLER}{ID}"
            ),
            check_mrn,
        )],
        PiiType::Account => vec![rule(
            ty,
            Digits(4),
            &format!(
                r"(?i)\b(?:(?:account|acct)\.?\s*(?:number|num|nbr|no|id)\b|(?:account|acct)\.?\s*#|acct\b|a/c\b|account\s+ending\s+(?:in|with)\b|(?:routing|aba|policy|member|subscriber)\s*(?:number|num|nbr|no|id)\b|(?:routing|aba|policy|member|subscriber)\s*#){FILLER}([A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?: [0-9]{{3,}})*)"
            ),
            check_account,
        )],
        PiiType::Ip => vec![
            // IPv6 first, so "::ffff:192.168.1.1" is one address rather than a bare IPv4 tail.
            // The pattern is a loose candidate; std's parser decides what is a real address.
            rule(
                ty,
                DigitsAndColon(1),
                r"(?i)(?:[0-9a-f]{0,4}:){2,8}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9a-f]{1,4})?",
                check_ipv6,
            ),
            rule(ty, Digits(4), r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b", check_ipv4),
        ],
        PiiType::Phone => vec![rule(
            ty,
            Digits(7),
            r"\+[0-9]{1,3}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,6}|(?:\b1[ .-]?)?(?:\([0-9]{3}\) ?|\b[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}\b",
            check_phone,
        )],
        PiiType::Date => vec![
            rule(ty, Digits(4), r"\b([0-9]{1,2})([/.-])([0-9]{1,2})([/.-])([0-9]{4}|[0-9]{2})\b", check_date_dmy),
            rule(ty, Digits(6), r"\b([0-9]{4})([/.-])([0-9]{1,2})([/.-])([0-9]{1,2})\b", check_date_iso),
            rule(ty, Digits(5), r"\b([0-9]{1,2})/([0-9]{4})\b", check_date_month_year),
            rule(
                ty,
                Digits(1),
                &format!(
                    r"(?i)\b{MONTH}\b\.?,?\s+(?:{DAY}\b(?:,?\s+{YEAR}\b)?|{YEAR}\b)|\b{DAY}(?:\s+of\s+|\s+|-){MONTH}\b\.?(?:,?\s+{YEAR}\b|-(?:{YEAR}|[0-9]{{2}})\b)?"
                ),
                check_whole_alone,
            ),
        ],
        PiiType::Zip => vec![
            rule(ty, Digits(9), r"\b[0-9]{5}-[0-9]{4}\b", check_zip4),
            rule(
                ty,
                Digits(5),
                &format!(r"\b(?:{STATE_CODES}|(?i:{STATE_NAMES}))\b,?\s+([0-9]{{5}}(?:-[0-9]{{4}})?)"),
                check_zip_after_keyword,
            ),
            rule(
                ty,
                Digits(5),
                r"(?i)\b(?:zip|postal)(?:\s*code)?\b(?:[\s.:#=-]|\bis\b)*([0-9]{5}(?:-[0-9]{4})?)",
                check_zip_after_keyword,
            ),
        ],
    }
}

// ---- Boundaries ----

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether the text before `start` continues the match: a letter or digit, or one of `joiners`
/// right after a digit (the "7-" in "7-123-45-6789" makes it part of a longer number).
fn glued_before(text: &str, start: usize, joiners: &str) -> bool {
    let mut back = text[..start].chars().rev();
    match back.next() {
        Some(c) if is_word(c) => true,
        Some(c) if joiners.contains(c) => back.next().is_some_and(|d| d.is_ascii_digit()),
        _ => false,
    }
}

/// Whether the text after `end` continues the match (see [`glued_before`]).
fn glued_after(text: &str, end: usize, joiners: &str) -> bool {
    let mut ahead = text[end..].chars();
    match ahead.next() {
        Some(c) if is_word(c) => true,
        Some(c) if joiners.contains(c) => ahead.next().is_some_and(|d| d.is_ascii_digit()),
        _ => false,
    }
}

fn stands_alone(text: &str, start: usize, end: usize, joiners: &str) -> bool {
    !glued_before(text, start, joiners) && !glued_after(text, end, joiners)
}

/// Accepts the whole match if it stands alone.
fn push_alone(text: &str, start: usize, end: usize, joiners: &str, out: &mut Vec<(usize, usize)>) -> bool {
    let ok = stands_alone(text, start, end, joiners);
    if ok {
        out.push((start, end));
    }
    ok
}

/// Accepts group 1 (an id after its keyword) if nothing glues on after it.
fn push_group(
    caps: &Captures<'_>,
    text: &str,
    joiners: &str,
    valid: impl Fn(&str) -> bool,
    out: &mut Vec<(usize, usize)>,
) -> bool {
    let Some(id) = caps.get(1) else { return false };
    let ok = valid(id.as_str()) && !glued_after(text, id.end(), joiners);
    if ok {
        out.push((id.start(), id.end()));
    }
    ok
}

fn whole(caps: &Captures<'_>) -> (usize, usize) {
    caps.get(0).map_or((0, 0), |m| (m.start(), m.end()))
}

fn num(caps: &Captures<'_>, i: usize) -> u32 {
    caps.get(i).and_then(|m| m.as_str().parse().ok()).unwrap_or(0)
}

fn text_of<'t>(caps: &Captures<'t>, i: usize) -> &'t str {
    caps.get(i).map_or("", |m| m.as_str())
}

fn count_digits(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

// ---- Checks ----

fn check_whole_alone(text: &str, caps: &Captures<'_>, out: &mut Vec<(usize, usize)>) -> bool {
    let (s, e) = whole(caps);
    push_alone(text, s, e, "", out)
}

fn check_url(text: &str, caps: &Captures<'_>, out: &mut Vec<(usize, usize)>) -> bool {
    let (s, e) = whole(caps);
    let mut url = &text[s..e];
    // Trailing punctuation and unbalanced closing brackets usually belong to the sentence.
    while let Some(last) = url.chars().next_back() {
        let strip = match last {
            '.' | ',' | ';' | ':' | '!' | '?' => true,
            ')' => url.matches(')').count() > url.matches('(').count(),
            ']' => url.matches(']').count() > url.matches('[').count(),
            '}' => url.matches('}').count() > url.matches('{').count(),
            _ => false,
        };
        if !strip {
            break;
        }
        url = &url[..url.len() - last.len_utf8()];
    }
    // "http://" followed by punctuation only is not an address.
    let body = url.find("://").map_or(url, |i| &url[i + 3..]);
    if !body.chars().any(char::is_alphanumeric) {
        return false;
    }
    push_alone(text, s, s + url.len(), "", out)
}

/// ISO 13616: move the first four characters to the end, read letters as 10..35, and the
/// number must be 1 mod 97. Spaces are ignored.
fn iban_checksum_ok(iban: &str) -> bool {
    let chars = || iban.bytes().filter(|&b| b != b' ');
    let mut rem: u32 = 0;
    for b in chars().skip(4).chain(chars().take(4)) {
        rem = match b {
            b'0'..=b'9' => (rem * 10 + u32::from(b - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(b - b'A') + 10) % 97,
            _ => return false,
        };
    }
    rem == 1
}

fn check_iban(text: &str, caps: &Captures<'_>, out: &mut Vec<(usize, usize)>) -> bool {
    let (s, mut e) = whole(caps);
    if glued_before(text, s, "") {
        return false;
    }
    // A grouped IBAN may have swallowed a following group of 4 ("... 7654 32 1234"): if the
    // checksum fails, drop trailing groups while the account part stays long enough.
    loop {
        let candidate = &text[s..e];
        let len = candidate.bytes().filter(|&b| b != b' ').count();
        if len < 15 {
            return false;
        }
        if iban_checksum_ok(candidate) && !glued_after(text, e, "") {
            out.push((s, e));
            return true;
        }
        match candidate.rfind(' ') {
            Some(i) => e = s + i,
            None => return false,
        }
    }
}

fn luhn_ok(digits: &str) -> bool {
    let mut sum = 0;
    let mut any_nonzero = false;
    for (i, b) in digits.bytes().filter(u8::is_ascii_digit).rev().enumerate() {
        let mut d = u32::from(b - b'0');
        any_nonzero |= d != 0;
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    any_nonzero && sum % 10 == 0
}

/// The match is a maximal run of digit groups joined by single spaces or dashes. A card is a
/// window of whole groups with 13-19 digits, one kind of separator, groups of 3+ digits when
/// separated, not glued to more digits by a dash, and a valid Luhn checksum.
fn check_card(text: &str, caps: &Captures<'_>, out: &mut Vec<(usize, usize)>) -> bool {
    let (s, e) = whole(caps);
    let run = &text[s..e];
    if count_digits(run) < 13 {
        return false;
    }
    // Group spans (absolute) and the separator after each group.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut seps: Vec<u8> = Vec::new();
    let mut group_start = s;
    for (i, b) in run.bytes().enumerate() {
        if b == b' ' || b == b'-' {
            groups.push((group_start, s + i));
            seps.push(b);
            group_start = s + i + 1;
        }
    }
    groups.push((group_start, e));

    let glued_start = glued_before(text, s, ".,");
    let glued_end = glued_after(text, e, ".,");
    let last = groups.len() - 1;
    let mut accepted = false;
    let mut g = 0;
    while g <= last {
        let left_ok = if g == 0 { !glued_start } else { seps[g - 1] == b' ' };
        let mut best = None;
        let mut digits = 0;
        for j in g..=last {
            let (gs, ge) = groups[j];
            digits += ge - gs;
            if digits > 19 {
                break;
            }
            if j > g && (seps[j - 1] != seps[g] || ge - gs < 3 || groups[g].1 - groups[g].0 < 3) {
                break;
            }
            let right_ok = if j == last { !glued_end } else { seps[j] == b' ' };
            if left_ok && right_ok && digits >= 13 && luhn_ok(&text[groups[g].0..ge]) {
                best = Some(j);
            }
        }
        match best {
            Some(j) => {
                out.push((groups[g].0, groups[j].1));
                accepted = true;
                g = j + 1;
            }
            None => g += 1,
        }
    }
    accepted
}

/// Area 000, 666 and 900-999, group 00 and serial 0000 are never issued.
fn ssn_ok(s: &str) -> bool {
    let mut d = [0u32; 9];
    let mut n = 0;
    for b in s.bytes().filter(u8::is_ascii_digit) {
        if n == 9 {
            return false;
        }
        d[n] = u32::from(b - b'0');
        n += 1;
    }
    if n != 9 {
        return false;
    }
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn check_ssn(text: &str, caps: &Captures<'_>, out: &mut Vec<(usize, usize)>) -> bool {
    let (s, e) = whole(caps);
    ssn_ok(&text[s..e]) && push_alone(text, s, e, "-.", out)
}

fn check_ssn_after_keyword(text: &str, caps: &Captures<'_>, out: &mut Vec<(usize, usize)>) -> bool {
    push_group(caps, text, "-.", ssn_ok, out)
}

fn check_mrn(text: &str, caps: &Captures<'_>, out: &mut Vec<(usize, usize)>) -> bool {
    // At least 5 characters and a digit, so words after the keyword ("MRN unknown") stay.
    let valid = |id: &str| id.chars().filter(char::is_ascii_alphanumeric).count() >= 5 && count_digits(id) >= 1;
    push_group(caps, text, "", valid, out)
}

fn check_account(text: &str, caps: &Captures<'_>, out: &mut Vec<(usize, usize)>) -> bool {
    push_group(caps, text, "", |id| count_digits(id) >= 4, out)
}

fn check_ipv4(text: &str, caps: &Captures<'_>, out: &mut Vec<(usize, usize)>) -> bool {
    let (s, e) = whole(caps);
    let octets_ok = text[s..e].split('.').all(|o| o.parse::<u8>().is_ok());
    // The joiner check rejects pieces of longer dotted numbers such as versions 1.2.3.4.5.
    octets_ok && push_alone(text, s, e, ".", out)
}

fn check_ipv6(text: &str, caps: &Captures<'_>, out: &mut Vec<(usize, usize)>) -> bool {
    let (s, e) = whole(caps);
    let mut candidate = &text[s..e];
    // Requiring a digit keeps words like "add::face" and a bare "::" out.
    if count_digits(candidate) == 0 {
        return false;
    }
    // "fe80::1:" at the end of a clause: the last colon is punctuation.
    if candidate.ends_with(':') && !candidate.ends_with("::") {
        candidate = &candidate[..candidate.len() - 1];
    }
    if candidate.parse::<Ipv6Addr>().is_err() {
        return false;
    }
    let end = s + candidate.len();
    let before_ok = !glued_before(text, s, ".") && !text[..s].ends_with(':');
    let after_ok = !glued_after(text, end, ".") && !text[end..].starts_with("::");
    let ok = before_ok && after_ok;
    if ok {
        out.push((s, end));
    }
    ok
}

fn check_phone(text: &str, caps: &Captures<'_>, out: &mut Vec<(usize, usize)>) -> bool {
    let (s, e) = whole(caps);
    let matched = &text[s..e];
    if !matched.starts_with('+') {
        // North American shape: the pattern fixed the digit count.
        return push_alone(text, s, e, "-.", out);
    }
    // International: keep the longest prefix, cut at a separator, with 7-15 digits, so a
    // number written after the phone number is not swallowed. "+1 " means exactly 11 digits.
    let nanp = matched.starts_with("+1") && matched[2..].starts_with([' ', '.', '-', '(']);
    let mut best = None;
    for (i, c) in matched.char_indices().skip(1) {
        let cut = i + c.len_utf8();
        let at_cut = cut == matched.len() || matched[cut..].starts_with([' ', '.', '-']);
        if !(c.is_ascii_digit() || c == ')') || !at_cut {
            continue;
        }
        let digits = count_digits(&matched[..cut]);
        let fits = if nanp { digits == 11 } else { (7..=15).contains(&digits) };
        if fits {
            best = Some(cut);
        }
    }
    match best {
        Some(cut) => push_alone(text, s, s + cut, "-.", out),
        None => false,
    }
}

fn year_ok(year: &str) -> bool {
    match year.len() {
        2 => true,
        4 => year.parse::<u32>().is_ok_and(|y| (1800..=2199).contains(&y)),
        _ => false,
    }
}

/// `12/03/2019`, `3/4/19`, `12.03.2019`, `12-03-2019`: day and month in either order.
fn check_date_dmy(text: &str, caps: &Captures<'_>, out: &mut Vec<(usize, usize)>) -> bool {
    let (a, b) = (num(caps, 1), num(caps, 3));
    let sep = text_of(caps, 2);
    let year = text_of(caps, 5);
    let valid = sep == text_of(caps, 4)
        && (1..=31).contains(&a)
        && (1..=31).contains(&b)
        && (a <= 12 || b <= 12)
        && year_ok(year)
        // "1.2.34" is far more often a version than a date.
        && (sep != "." || year.len() == 4);
    let (s, e) = whole(caps);
    valid && push_alone(text, s, e, "/.-", out)
}

/// `2019-03-12`, `2019/3/12`.
fn check_date_iso(text: &str, caps: &Captures<'_>, out: &mut Vec<(usize, usize)>) -> bool {
    let valid = text_of(caps, 2) == text_of(caps, 4)
        && year_ok(text_of(caps, 1))
        && (1..=12).contains(&num(caps, 3))
        && (1..=31).contains(&num(caps, 5));
    let (s, e) = whole(caps);
    valid && push_alone(text, s, e, "/.-", out)
}

/// `03/2019`.
fn check_date_month_year(text: &str, caps: &Captures<'_>, out: &mut Vec<(usize, usize)>) -> bool {
    let valid = (1..=12).contains(&num(caps, 1)) && year_ok(text_of(caps, 2));
    let (s, e) = whole(caps);
    valid && push_alone(text, s, e, "/.-", out)
}

fn check_zip4(text: &str, caps: &Captures<'_>, out: &mut Vec<(usize, usize)>) -> bool {
    let (s, e) = whole(caps);
    push_alone(text, s, e, "-.", out)
}

fn check_zip_after_keyword(text: &str, caps: &Captures<'_>, out: &mut Vec<(usize, usize)>) -> bool {
    push_group(caps, text, "-.", |_| true, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact_with(types: &[PiiType], text: &str) -> String {
        Redactor::new(types).redact(text, &mut BTreeMap::new()).into_owned()
    }

    fn all(text: &str) -> String {
        redact_with(&PiiType::ALL, text)
    }

    /// Asserts that `text` is left exactly as it is, borrowed.
    fn untouched(text: &str) {
        let r = Redactor::new(&PiiType::ALL);
        let mut counts = BTreeMap::new();
        let out = r.redact(text, &mut counts);
        assert!(matches!(out, Cow::Borrowed(_)), "{text:?} became {out:?}");
        assert!(counts.is_empty());
    }

    #[test]
    fn names_placeholders_and_parse() {
        for t in PiiType::ALL {
            assert_eq!(t.placeholder(), format!("[{}]", t.name()));
            assert_eq!(PiiType::parse(t.name()), Some(t));
            assert_eq!(PiiType::parse(&t.name().to_lowercase()), Some(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.name()));
            assert_eq!(serde_json::from_str::<PiiType>(&json).unwrap(), t);
        }
        assert_eq!(PiiType::parse("Card"), Some(PiiType::Card));
        assert_eq!(PiiType::parse(" email "), Some(PiiType::Email));
        assert_eq!(PiiType::parse("name"), None);
        assert_eq!(PiiType::parse(""), None);
        let mut sorted: Vec<u8> = PiiType::ALL.iter().map(|t| t.priority()).collect();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 11);
    }

    #[test]
    fn redactor_is_send_sync_clone() {
        fn assert_traits<T: Send + Sync + Clone>() {}
        assert_traits::<Redactor>();
        let r = Redactor::new(&PiiType::ALL).clone();
        assert_eq!(r.redact("a@b.com", &mut BTreeMap::new()), "[EMAIL]");
    }

    #[test]
    fn email() {
        assert_eq!(all("Contact john.doe@example.com today"), "Contact [EMAIL] today");
        assert_eq!(all("a+tag@mail.example.co.uk."), "[EMAIL].");
        assert_eq!(all("<Jane_Smith99@hospital.org>"), "<[EMAIL]>");
        assert_eq!(all("josé.garcía@correo.es"), "[EMAIL]");
        untouched("user@localhost and @handle and a @ b");
    }

    #[test]
    fn url() {
        assert_eq!(all("see https://example.com/a?b=1&c=d."), "see [URL].");
        assert_eq!(all("(see www.example.org/path)"), "(see [URL])");
        assert_eq!(all("ftp://files.example.com/x.zip"), "[URL]");
        assert_eq!(all("HTTP://EXAMPLE.COM"), "[URL]");
        assert_eq!(all("https://en.wikipedia.org/wiki/Foo_(bar), ok"), "[URL], ok");
        untouched("http:// and www.example and example.com");
    }

    #[test]
    fn ipv4() {
        assert_eq!(all("from 192.168.0.1 and 10.0.0.255."), "from [IP] and [IP].");
        assert_eq!(all("host=8.8.8.8:53"), "host=[IP]:53");
        untouched("version 1.2.3.4.5 is out");
        untouched("256.1.1.1 and 1.2.3.999");
        untouched("v1.2.3.4 build");
    }

    #[test]
    fn ipv6() {
        assert_eq!(all("addr 2001:0db8:85a3:0000:0000:8a2e:0370:7334 end"), "addr [IP] end");
        assert_eq!(all("link fe80::1, loopback ::1"), "link [IP], loopback [IP]");
        assert_eq!(all("2001:db8::8a2e:370:7334"), "[IP]");
        assert_eq!(all("mapped ::ffff:192.168.1.1"), "mapped [IP]");
        assert_eq!(all("server fe80::1: down"), "server [IP]: down");
        untouched("at 12:30 or 12:30:45");
        untouched("std::vec::Vec and add::face");
        untouched("mac 00:1a:2b:3c:4d:5e");
    }

    #[test]
    fn card() {
        assert_eq!(all("card 4111 1111 1111 1111 exp"), "card [CARD] exp");
        assert_eq!(all("4111-1111-1111-1111"), "[CARD]");
        assert_eq!(all("4111111111111111."), "[CARD].");
        assert_eq!(all("amex 3782 822463 10005"), "amex [CARD]");
        assert_eq!(all("paid 4111 1111 1111 1111 2019"), "paid [CARD] 2019");
        // Luhn fails.
        untouched("4111 1111 1111 1112");
        // Too long, or glued to letters or to more dashed digits.
        untouched("41111111111111111111");
        untouched("abc4111111111111111");
        untouched("4111-1111-1111-1111-1234");
        // Mixed separators and tiny groups are not card formatting.
        untouched("4111 1111-1111 1111");
        untouched("0000000000000000");
    }

    #[test]
    fn iban() {
        assert_eq!(all("IBAN GB82 WEST 1234 5698 7654 32."), "IBAN [IBAN].");
        assert_eq!(all("DE89370400440532013000"), "[IBAN]");
        assert_eq!(all("pay GB82WEST12345698765432 now"), "pay [IBAN] now");
        assert_eq!(all("DE89 3704 0044 0532 0130 00 5555"), "[IBAN] 5555");
        let bad = redact_with(&[PiiType::Iban], "GB83 WEST 1234 5698 7654 32");
        assert_eq!(bad, "GB83 WEST 1234 5698 7654 32");
        let bad = redact_with(&[PiiType::Iban], "DE89370400440532013001");
        assert_eq!(bad, "DE89370400440532013001");
        assert!(iban_checksum_ok("GB82WEST12345698765432"));
        assert!(!iban_checksum_ok("GB82WEST12345698765433"));
    }

    #[test]
    fn ssn() {
        assert_eq!(all("ssn 123-45-6789."), "ssn [SSN].");
        assert_eq!(all("id 123 45 6789 ok"), "id [SSN] ok");
        assert_eq!(all("SSN: 123456789"), "SSN: [SSN]");
        assert_eq!(all("Social Security Number is 078051120"), "Social Security Number is [SSN]");
        assert_eq!(all("SS# 123456789"), "SS# [SSN]");
        for bad in ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000"] {
            assert_eq!(redact_with(&[PiiType::Ssn], bad), bad);
        }
        let ssn_only = [PiiType::Ssn];
        for glued in ["abc123-45-6789", "1123-45-6789", "123-45-67890", "123-45-6789-1"] {
            assert_eq!(redact_with(&ssn_only, glued), glued);
        }
        // Nine bare digits need the keyword.
        assert_eq!(redact_with(&ssn_only, "order 123456789"), "order 123456789");
        assert_eq!(redact_with(&ssn_only, "SSN 1234567890"), "SSN 1234567890");
    }

    #[test]
    fn phone() {
        assert_eq!(all("call (555) 123-4567 now"), "call [PHONE] now");
        assert_eq!(all("555-123-4567, 555.123.4567"), "[PHONE], [PHONE]");
        assert_eq!(all("+1 555 123 4567"), "[PHONE]");
        assert_eq!(all("1-800-555-0199"), "[PHONE]");
        assert_eq!(all("+1 (555) 123-4567 ext"), "[PHONE] ext");
        assert_eq!(all("London +44 20 7946 0958."), "London [PHONE].");
        assert_eq!(all("Paris +33 1 23 45 67 89"), "Paris [PHONE]");
        assert_eq!(all("+15551234567"), "[PHONE]");
        assert_eq!(all("+1 555 123 4567 2019"), "[PHONE] 2019");
        let phone = [PiiType::Phone];
        for not_phone in ["555-123-45678", "1555-123-4567", "+12 34", "12:30", "5+1234567", "+1234567890123456789"] {
            assert_eq!(redact_with(&phone, not_phone), not_phone);
        }
    }

    #[test]
    fn date_numeric() {
        assert_eq!(all("on 12/03/2019."), "on [DATE].");
        assert_eq!(all("on 3/4/19, again"), "on [DATE], again");
        assert_eq!(all("2019-03-12"), "[DATE]");
        assert_eq!(all("12.03.2019"), "[DATE]");
        assert_eq!(all("31-12-2020"), "[DATE]");
        assert_eq!(all("since 03/2019"), "since [DATE]");
        let date = [PiiType::Date];
        for not_date in [
            "2019",
            "in 2019 we",
            "XX/XX/XXXX",
            "XX/XX/2019",
            "XXXX",
            "version 1.2.34",
            "13/13/2019",
            "2019-13-01",
            "12/03/2019/5",
            "12:30",
            "1/2",
            "13/2019",
        ] {
            assert_eq!(redact_with(&date, not_date), not_date);
        }
    }

    #[test]
    fn date_words() {
        let cases = [
            ("March 12, 2019", "[DATE]"),
            ("on 12 March 2019.", "on [DATE]."),
            ("due Mar 12 ok", "due [DATE] ok"),
            ("in March 2019", "in [DATE]"),
            ("Dec. 24, 2012", "[DATE]"),
            ("March 12th, 2019", "[DATE]"),
            ("the 1st of June", "the [DATE]"),
            ("sept 3rd", "[DATE]"),
            ("12-Mar-2019", "[DATE]"),
            ("May 5", "[DATE]"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_with(&[PiiType::Date], input), want, "{input}");
        }
        let date = [PiiType::Date];
        for not_date in ["March", "in 2019", "you may 5 times", "March 1500 people", "Marching 12", "XXXX"] {
            assert_eq!(redact_with(&date, not_date), not_date);
        }
    }

    #[test]
    fn mrn_keeps_keyword() {
        assert_eq!(all("MRN: 1234567"), "MRN: [MRN]");
        assert_eq!(all("MR# A123456 seen"), "MR# [MRN] seen");
        assert_eq!(all("medical record number 9876543"), "medical record number [MRN]");
        assert_eq!(all("Med Rec No. 55555"), "Med Rec No. [MRN]");
        assert_eq!(all("patient ID is 00123456."), "patient ID is [MRN].");
        assert_eq!(all("Patient Identifier: AB-12345"), "Patient Identifier: [MRN]");
        let mrn = [PiiType::Mrn];
        for not_mrn in ["MRN 1234", "MRN pending 12", "mRNA1273 vaccine", "MRN XXXX"] {
            assert_eq!(redact_with(&mrn, not_mrn), not_mrn);
        }
    }

    #[test]
    fn account_keeps_keyword() {
        assert_eq!(all("account number 12345678"), "account number [ACCOUNT]");
        assert_eq!(all("Acct # 9876-5432."), "Acct # [ACCOUNT].");
        assert_eq!(all("account no. 000123456"), "account no. [ACCOUNT]");
        assert_eq!(all("a/c 12345678"), "a/c [ACCOUNT]");
        assert_eq!(all("routing number: 021000021"), "routing number: [ACCOUNT]");
        assert_eq!(all("Policy Number ABC12345"), "Policy Number [ACCOUNT]");
        assert_eq!(all("member ID XYZ987654"), "member ID [ACCOUNT]");
        assert_eq!(all("account ending in 4321"), "account ending in [ACCOUNT]");
        let acct = [PiiType::Account];
        for not_acct in
            ["account XXXX", "account number XXXX", "account number 123", "my account 12345", "account numbers 1"]
        {
            assert_eq!(redact_with(&acct, not_acct), not_acct);
        }
    }

    #[test]
    fn zip() {
        assert_eq!(all("San Francisco, CA 94105"), "San Francisco, CA [ZIP]");
        assert_eq!(all("Dallas, Texas 75001."), "Dallas, Texas [ZIP].");
        assert_eq!(all("New York, new york 10001"), "New York, new york [ZIP]");
        assert_eq!(all("zip code: 10001"), "zip code: [ZIP]");
        assert_eq!(all("postal code 60601"), "postal code [ZIP]");
        assert_eq!(all("mail to 12345-6789 box"), "mail to [ZIP] box");
        assert_eq!(all("CA 94105-1234"), "CA [ZIP]");
        let zip = [PiiType::Zip];
        for not_zip in ["94105", "in 12345 cases", "or 12345", "CA 941051", "123-12345-6789"] {
            assert_eq!(redact_with(&zip, not_zip), not_zip);
        }
    }

    #[test]
    fn cfpb_masks_stay() {
        untouched("On XX/XX/XXXX I called about account XXXX, card XXXX XXXX XXXX XXXX.");
        untouched("XXXX XXXX, XX XXXXX");
    }

    #[test]
    fn overlap_priority() {
        let mut counts = BTreeMap::new();
        let r = Redactor::new(&PiiType::ALL);
        // CARD beats ACCOUNT; SSN beats MRN; URL beats EMAIL and IP.
        assert_eq!(r.redact("acct # 4111 1111 1111 1111", &mut counts), "acct # [CARD]");
        assert_eq!(r.redact("MRN: 123-45-6789", &mut counts), "MRN: [SSN]");
        assert_eq!(r.redact("http://user@192.168.0.1/x", &mut counts), "[URL]");
        assert_eq!(r.redact("mailto:bob@example.com", &mut counts), "mailto:[EMAIL]");
        let want: BTreeMap<_, _> =
            [(PiiType::Card, 1), (PiiType::Ssn, 1), (PiiType::Url, 1), (PiiType::Email, 1)].into();
        assert_eq!(counts, want);
        // Without the higher-priority type, the lower one gets the span.
        assert_eq!(redact_with(&[PiiType::Mrn], "MRN: 123-45-6789"), "MRN: [MRN]");
    }

    #[test]
    fn only_requested_types() {
        let text = "mail a@b.com or call 555-123-4567 on 2019-03-12";
        assert_eq!(redact_with(&[PiiType::Email], text), "mail [EMAIL] or call 555-123-4567 on 2019-03-12");
        assert_eq!(redact_with(&[PiiType::Phone, PiiType::Date], text), "mail a@b.com or call [PHONE] on [DATE]");
        assert_eq!(redact_with(&[], text), text);
    }

    #[test]
    fn counts_accumulate() {
        let r = Redactor::new(&PiiType::ALL);
        let mut counts = BTreeMap::new();
        r.redact("a@b.com, c@d.org, 555-123-4567", &mut counts);
        r.redact("e@f.net", &mut counts);
        assert_eq!(counts.get(&PiiType::Email), Some(&3));
        assert_eq!(counts.get(&PiiType::Phone), Some(&1));
        assert_eq!(counts.len(), 2);
    }

    #[test]
    fn borrowed_when_nothing_matches() {
        untouched("");
        untouched("The customer called twice about a late fee.");
        untouched("I paid 250 dollars in 2019 and 3 more times since: no reply.");
        let r = Redactor::new(&PiiType::ALL);
        assert!(matches!(r.redact("x a@b.com", &mut BTreeMap::new()), Cow::Owned(_)));
    }

    #[test]
    fn unicode_text_around_matches() {
        assert_eq!(all("Él escribió: «ana@correo.es» — 555-123-4567 ✓"), "Él escribió: «[EMAIL]» — [PHONE] ✓");
        assert_eq!(all("日付 2019-03-12 です"), "日付 [DATE] です");
        untouched("çà 12345é");
    }

    #[test]
    fn random_text_never_panics() {
        // Mixed pieces (multi-byte characters, separators, keywords) at random, to exercise the
        // boundary and slicing code far from the hand-written cases.
        const PIECES: [&str; 24] = [
            "0", "7", "12", "4111", " ", "-", ".", "/", ":", "::", "@", "+", "(", ")", "#", "é", "日", "X", "ab",
            "www.", "http://", "MRN ", "CA ", "SSN ",
        ];
        let r = Redactor::new(&PiiType::ALL);
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            let mut text = String::new();
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            for _ in 0..(seed >> 58) {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                text.push_str(PIECES[(seed >> 33) as usize % PIECES.len()]);
            }
            let mut counts = BTreeMap::new();
            let out = r.redact(&text, &mut counts);
            assert_eq!(matches!(out, Cow::Borrowed(_)), counts.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn long_digit_runs_are_fast() {
        // Would be quadratic if rejected runs were retried from each character.
        let digits = "7".repeat(50_000);
        let spaced = "12 ".repeat(20_000);
        let r = Redactor::new(&PiiType::ALL);
        assert!(matches!(r.redact(&digits, &mut BTreeMap::new()), Cow::Borrowed(_)));
        assert!(matches!(r.redact(&spaced, &mut BTreeMap::new()), Cow::Borrowed(_)));
    }
}
