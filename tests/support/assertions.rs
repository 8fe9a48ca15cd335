//! Assertions on text that name what they looked for, so a list of expected (or
//! forbidden) phrases is one call and a failure says which phrase it was.

/// Fails naming the first of `needles` that `haystack` lacks, and showing `haystack`.
#[track_caller]
pub fn assert_contains(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            haystack.contains(needle),
            "missing `{needle}` in: {haystack}"
        );
    }
}

/// Fails naming the first of `needles` that `haystack` holds, and showing `haystack`.
#[track_caller]
pub fn assert_lacks(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            !haystack.contains(needle),
            "unexpected `{needle}` in: {haystack}"
        );
    }
}
