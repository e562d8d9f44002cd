//! Cutting text to a number of characters without ever splitting a UTF-8
//! sequence, leaving a visible marker where text was removed.

/// Counted in Unicode scalar values (`char`s), the unit of the budget.
pub(crate) fn char_len(text: &str) -> usize {
    text.chars().count()
}

/// The marker left where `removed` characters were cut.
pub fn truncation_marker(removed: usize) -> String {
    format!("[… truncated {removed} characters …]")
}

/// Keeps the first `keep` characters of `text` (a prefix on a char boundary)
/// and appends the marker when anything was removed. Returns the new text and
/// how many characters were removed.
pub(crate) fn keep_head(text: &str, keep: usize) -> (String, usize) {
    let total = char_len(text);
    if keep >= total {
        return (text.to_owned(), 0);
    }
    let byte_end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    let removed = total - keep;
    let head = text[..byte_end].trim_end();
    let sep = if head.is_empty() { "" } else { "\n" };
    (
        format!("{head}{sep}{}", truncation_marker(removed)),
        removed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_char_boundaries() {
        let (s, removed) = keep_head("héllo wörld", 3);
        assert_eq!(s, "hél\n[… truncated 8 characters …]");
        assert_eq!(removed, 8);
        assert_eq!(keep_head("abc", 3), ("abc".to_owned(), 0));
        assert_eq!(keep_head("日本語", 0).0, "[… truncated 3 characters …]");
    }
}
