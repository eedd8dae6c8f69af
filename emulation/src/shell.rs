//! Writing shell scripts safely.

/// Quotes `text` as one word for a POSIX shell: single quotes, each `'` written as `'\''`.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(x) `y` \"z\""), "'$(x) `y` \"z\"'");
    }
}
