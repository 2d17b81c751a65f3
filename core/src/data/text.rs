//! Text normalisation: the per-field cleaning rules and the keys used to find duplicates.

use std::borrow::Cow;
use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

/// Which text rules run; each is counted in the report under `modified` when it changes a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TextRules {
    /// Decode HTML entities (`&#039;`, `&quot;`, `&amp;`, named and numeric).
    pub html_entities: bool,
    /// Unicode NFKC: compatibility characters (ligatures, full-width forms, NBSP) to plain ones.
    pub unicode_nfkc: bool,
    /// Trim, and collapse every run of whitespace (newlines included) to one space.
    pub whitespace: bool,
}

impl Default for TextRules {
    fn default() -> Self {
        TextRules { html_entities: true, unicode_nfkc: true, whitespace: true }
    }
}

/// What each rule changed in one text.
#[derive(Debug, Default, Clone, Copy)]
pub struct Changes {
    pub html_entities: bool,
    pub unicode_nfkc: bool,
    pub whitespace: bool,
}

/// Applies the rules in the order that makes them compose: entities first (`&nbsp;` becomes a
/// no-break space), then NFKC (which makes it a plain space), then whitespace.
pub fn clean_text<'a>(text: &'a str, rules: &TextRules, changes: &mut Changes) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    if rules.html_entities && out.contains('&') {
        let decoded = html_escape::decode_html_entities(&out);
        if decoded != out {
            changes.html_entities = true;
            out = Cow::Owned(decoded.into_owned());
        }
    }
    if rules.unicode_nfkc && !out.is_ascii() && is_nfkc_quick(out.chars()) != IsNormalized::Yes {
        let normalized: String = out.nfkc().collect();
        if normalized != out {
            changes.unicode_nfkc = true;
            out = Cow::Owned(normalized);
        }
    }
    if rules.whitespace && needs_whitespace_fix(&out) {
        changes.whitespace = true;
        out = Cow::Owned(collapse_whitespace(&out));
    }
    out
}

/// ASCII whitespace as `char::is_whitespace` sees it (space, \t, \n, \x0B, \x0C, \r).
fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t'..=b'\r')
}

/// True when trimming or collapsing would change the text: leading/trailing whitespace, or any
/// whitespace that is not a single ASCII space.
fn needs_whitespace_fix(s: &str) -> bool {
    if !s.is_ascii() {
        return needs_whitespace_fix_unicode(s);
    }
    let b = s.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else { return false };
    // Whole-slice scans (vectorised) rather than a byte-by-byte state machine.
    is_ascii_space(first)
        || is_ascii_space(last)
        || b.iter().any(|&c| (b'\t'..=b'\r').contains(&c))
        || memchr::memmem::find(b, b"  ").is_some()
}

fn needs_whitespace_fix_unicode(s: &str) -> bool {
    let mut prev_space = true; // so a leading space counts
    for c in s.chars() {
        if c.is_whitespace() {
            if prev_space || c != ' ' {
                return true;
            }
            prev_space = true;
        } else {
            prev_space = false;
        }
    }
    prev_space && !s.is_empty()
}

/// Trims and turns every whitespace run into one space. Byte-wise for ASCII text (the common
/// case, several times faster than `split_whitespace`).
fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    if !s.is_ascii() {
        for word in s.split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
        return out;
    }
    // ASCII: every byte index is a character boundary, so words can be copied as slices.
    for word in s.as_bytes().split(|&b| is_ascii_space(b)).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        let start = word.as_ptr() as usize - s.as_ptr() as usize;
        out.push_str(&s[start..start + word.len()]);
    }
    out
}

/// The key under which "normalised" duplicates meet: lower case, punctuation and symbols
/// removed, whitespace collapsed — the same as pandas'
/// `s.str.lower().str.replace(r"[^\w\s]", "").str.split().str.join(" ")`. Written as bytes
/// (always valid UTF-8) because it is only hashed and shingled; ASCII goes byte by byte.
pub fn normalized_key(text: &str, out: &mut Vec<u8>) {
    out.clear();
    if text.is_ascii() {
        return normalized_key_ascii(text.as_bytes(), out);
    }
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if c.is_alphanumeric() || c == '_' {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            let mut buf = [0u8; 4];
            for lower in c.to_lowercase() {
                out.extend_from_slice(lower.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// What each ASCII byte becomes in a key: `DROP`, `SPACE`, or itself lower-cased.
const DROP: u8 = 0;
const SPACE: u8 = 1;
static KEY_BYTE: [u8; 128] = {
    let mut t = [DROP; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphanumeric() || c == b'_' {
            c.to_ascii_lowercase()
        } else if matches!(c, b' ' | b'\t'..=b'\r') {
            SPACE
        } else {
            DROP
        };
        b += 1;
    }
    t
};

/// The hot path (most text is ASCII): one table lookup per byte into a buffer that cannot
/// overflow, since the key is never longer than the text.
fn normalized_key_ascii(bytes: &[u8], out: &mut Vec<u8>) {
    out.resize(bytes.len(), 0);
    let mut n = 0;
    let mut pending_space = false;
    for &b in bytes {
        let k = KEY_BYTE[(b & 0x7F) as usize];
        if k > SPACE {
            if pending_space {
                out[n] = b' ';
                n += 1;
                pending_space = false;
            }
            out[n] = k;
            n += 1;
        } else if k == SPACE {
            pending_space = n > 0;
        }
    }
    out.truncate(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> (String, Changes) {
        let mut ch = Changes::default();
        let out = clean_text(s, &TextRules::default(), &mut ch).into_owned();
        (out, ch)
    }

    #[test]
    fn decodes_entities_the_drugs_reviews_hold() {
        let (out, ch) = clean("I&#039;ve &quot;loved&quot; it &amp; more");
        assert_eq!(out, "I've \"loved\" it & more");
        assert!(ch.html_entities && !ch.unicode_nfkc && !ch.whitespace);
    }

    #[test]
    fn nfkc_then_whitespace() {
        let (out, ch) = clean("  ﬁne\u{00A0}&nbsp;ＡＢＣ \n\t x ");
        assert_eq!(out, "fine ABC x");
        assert!(ch.html_entities && ch.unicode_nfkc && ch.whitespace);
    }

    #[test]
    fn clean_text_is_borrowed_when_nothing_changes() {
        let mut ch = Changes::default();
        assert!(matches!(clean_text("plain text here", &TextRules::default(), &mut ch), Cow::Borrowed(_)));
        assert!(!needs_whitespace_fix("a b"));
        assert!(needs_whitespace_fix(" a"));
        assert!(needs_whitespace_fix("a "));
        assert!(needs_whitespace_fix("a  b"));
        assert!(needs_whitespace_fix("a\nb"));
        assert!(needs_whitespace_fix("a \tb"));
        assert!(!needs_whitespace_fix(""));
        assert!(needs_whitespace_fix("é  b"));
        assert!(!needs_whitespace_fix("é b"));
        assert_eq!(collapse_whitespace(" a \t\x0B b\r\n"), "a b");
        assert_eq!(collapse_whitespace("\u{2003}é\u{3000} b "), "é b");
    }

    #[test]
    fn rules_can_be_switched_off() {
        let rules = TextRules { html_entities: false, unicode_nfkc: false, whitespace: false };
        let mut ch = Changes::default();
        assert_eq!(clean_text(" a&amp;ﬁ ", &rules, &mut ch), " a&amp;ﬁ ");
    }

    #[test]
    fn normalized_key_ignores_case_punctuation_whitespace() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        normalized_key("Don't  STOP, me now!", &mut a);
        normalized_key("dont stop me\tnow", &mut b);
        assert_eq!(a, b"dont stop me now");
        assert_eq!(a, b);
        normalized_key("  Émile_Zola\u{00A0}ÉTÉ, 42 ", &mut a);
        assert_eq!(String::from_utf8(a.clone()).unwrap(), "émile_zola été 42");
        // The ASCII fast path and the general path agree.
        let text = " Hello,  World_1!\t(a-b) x\x0By ";
        normalized_key(text, &mut a);
        normalized_key(&format!("{text}é"), &mut b);
        assert_eq!(String::from_utf8(a.clone()).unwrap(), "hello world_1 ab x y");
        assert_eq!(String::from_utf8(b.clone()).unwrap(), "hello world_1 ab x y é");
    }
}
