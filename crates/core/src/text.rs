//! Text scanning that several stages share.

/// Each number in `text` that starts a token — a run of ASCII digits and dots whose first
/// digit does not follow an ASCII letter or digit, so the "5" of "iPhone15" is not one — with
/// the text after it, leading spaces skipped. Clean reads capacities ("256 GB") off fields
/// with it and resolve reads them off titles; each applies its own units to the rest.
pub fn numbers_with_rest(text: &str) -> impl Iterator<Item = (&str, &str)> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                    i += 1;
                }
                let mut rest = i;
                while rest < bytes.len() && bytes[rest] == b' ' {
                    rest += 1;
                }
                return Some((&text[start..i], &text[rest..]));
            }
            i += 1;
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_start_tokens_and_carry_the_rest() {
        let found: Vec<(&str, &str)> = numbers_with_rest("iphone15 256 gb 蓝色1.5l").collect();
        assert_eq!(found, [("256", "gb 蓝色1.5l"), ("1.5", "l")]);
        assert_eq!(numbers_with_rest("no digits").count(), 0);
        assert_eq!(numbers_with_rest("8").collect::<Vec<_>>(), [("8", "")]);
    }
}
