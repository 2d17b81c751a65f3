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
        out = Cow::Owned(out.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    out
}

/// True when trimming or collapsing would change the text: leading/trailing whitespace, or any
/// whitespace that is not a single ASCII space.
fn needs_whitespace_fix(s: &str) -> bool {
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

/// The key under which "normalised" duplicates meet: lower case, punctuation and symbols
/// removed, whitespace collapsed — the same as pandas'
/// `s.str.lower().str.replace(r"[^\w\s]", "").str.split().str.join(" ")`.
pub fn normalized_key(text: &str, out: &mut String) {
    out.clear();
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if c.is_alphanumeric() || c == '_' {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else {
                out.extend(c.to_lowercase());
            }
        }
    }
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
    }

    #[test]
    fn rules_can_be_switched_off() {
        let rules = TextRules { html_entities: false, unicode_nfkc: false, whitespace: false };
        let mut ch = Changes::default();
        assert_eq!(clean_text(" a&amp;ﬁ ", &rules, &mut ch), " a&amp;ﬁ ");
    }

    #[test]
    fn normalized_key_ignores_case_punctuation_whitespace() {
        let mut a = String::new();
        let mut b = String::new();
        normalized_key("Don't  STOP, me now!", &mut a);
        normalized_key("dont stop me\tnow", &mut b);
        assert_eq!(a, "dont stop me now");
        assert_eq!(a, b);
        normalized_key("  Émile_Zola ", &mut a);
        assert_eq!(a, "émile_zola");
    }
}
