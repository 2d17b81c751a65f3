//! Tokenizer files (`tokenizer.json`, or `vocab.txt` when the first byte is odd), then an
//! encoding of the tail of the input with them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use savant_core::tokenize::TextTokenizer;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    // The file, then after a NUL byte the text to encode.
    let (file, text) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], String::from_utf8_lossy(&rest[i + 1..]).into_owned()),
        None => (rest, "the patient's card was charged twice".to_string()),
    };
    let tokenizer = if pick & 1 == 1 {
        TextTokenizer::from_vocab_txt(file, "vocab.txt", pick & 2 == 2)
    } else {
        TextTokenizer::from_tokenizer_json(file, "tokenizer.json", 0)
    };
    if let Ok(mut t) = tokenizer {
        let _ = t.ids(&text);
        let _ = t.word_pieces(&text);
        let _ = t.set_max_len(Some(8));
        let _ = t.encode_each(&[text.as_str()]);
    }
});
