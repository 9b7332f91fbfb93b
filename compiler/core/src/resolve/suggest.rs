//! "Did you mean" suggestions for unknown names.

/// The candidate closest to `name`, if one is close enough to be a plausible typo.
///
/// Uses Damerau–Levenshtein distance (a swapped pair of letters is one edit), accepting at
/// most a third of the name's length (at least one edit), and also a case-insensitive match.
pub fn closest<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let limit = (name.chars().count() / 3).max(1);
    let lowered = name.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        let distance = if candidate.to_lowercase() == lowered {
            0
        } else {
            strsim::damerau_levenshtein(name, candidate)
        };
        if distance <= limit
            && best.is_none_or(|(d, c)| distance < d || (distance == d && candidate < c))
        {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_typos_not_strangers() {
        let names = ["accuracy", "precision", "fit", "report"];
        assert_eq!(closest("acuracy", names), Some("accuracy"));
        assert_eq!(closest("fti", names), Some("fit"));
        assert_eq!(closest("Report", names), Some("report"));
        assert_eq!(closest("banana", names), None);
        assert_eq!(
            closest("fit", names),
            None,
            "an exact match is not a suggestion"
        );
    }
}
