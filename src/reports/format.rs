//! Numbers as each language writes them: « 1 234,5 » and « 12,5 % » in
//! French (narrow no-break spaces, decimal comma), "1,234.5" and "12.5%" in
//! English; and plainer forms for CSV files, which spreadsheets must read.

use crate::domain::Lang;

/// The narrow no-break space French puts between thousands and before `%`.
pub const NNBSP: char = '\u{202F}';

/// `value` rounded to `decimals` places, with thousands grouped.
pub fn number(lang: Lang, value: f64, decimals: usize) -> String {
    if !value.is_finite() {
        return "—".into();
    }
    let plain = format!("{:.*}", decimals, value.abs());
    let (int, frac) = match plain.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (plain.as_str(), None),
    };
    let (group, point) = match lang {
        Lang::Fr => (NNBSP, ','),
        Lang::En => (',', '.'),
    };
    let mut out = String::new();
    // A value that rounds to zero is written without a minus sign.
    if value < 0.0 && plain.chars().any(|c| c.is_ascii_digit() && c != '0') {
        out.push('-');
    }
    let digits: Vec<char> = int.chars().collect();
    for (k, c) in digits.iter().enumerate() {
        if k > 0 && (digits.len() - k).is_multiple_of(3) {
            out.push(group);
        }
        out.push(*c);
    }
    if let Some(f) = frac {
        out.push(point);
        out.push_str(f);
    }
    out
}

/// An integer count.
pub fn count(lang: Lang, value: i64) -> String {
    // Counts stay far below 2^53, where f64 is exact.
    number(lang, value as f64, 0)
}

/// A ratio (0.125) as a percentage with one decimal.
pub fn percent(lang: Lang, ratio: f64) -> String {
    let n = number(lang, ratio * 100.0, 1);
    match lang {
        Lang::Fr => format!("{n}{NNBSP}%"),
        Lang::En => format!("{n}%"),
    }
}

/// Seconds as hours with one decimal.
pub fn hours(lang: Lang, seconds: f64) -> String {
    number(lang, seconds / 3600.0, 1)
}

/// A number for a CSV file: no grouping, a decimal comma in French (the
/// file then separates fields with `;`, as French spreadsheets expect).
pub fn csv_number(lang: Lang, value: f64, decimals: usize) -> String {
    if !value.is_finite() {
        return String::new();
    }
    let plain = format!("{:.*}", decimals, value);
    match lang {
        Lang::Fr => plain.replace('.', ","),
        Lang::En => plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_and_english_numbers() {
        let cases: &[(f64, usize, &str, &str)] = &[
            (0.0, 0, "0", "0"),
            (1234.5, 1, "1\u{202F}234,5", "1,234.5"),
            (1_000_000.0, 0, "1\u{202F}000\u{202F}000", "1,000,000"),
            (999.96, 1, "1\u{202F}000,0", "1,000.0"),
            (-12345.0, 0, "-12\u{202F}345", "-12,345"),
            (-0.01, 1, "0,0", "0.0"),
            (f64::NAN, 1, "—", "—"),
        ];
        for (v, d, fr, en) in cases {
            assert_eq!(number(Lang::Fr, *v, *d), *fr, "{v}");
            assert_eq!(number(Lang::En, *v, *d), *en, "{v}");
        }
        assert_eq!(percent(Lang::Fr, 0.125), "12,5\u{202F}%");
        assert_eq!(percent(Lang::En, 0.125), "12.5%");
        assert_eq!(hours(Lang::Fr, 5400.0), "1,5");
        assert_eq!(csv_number(Lang::Fr, 1234.5, 2), "1234,50");
        assert_eq!(csv_number(Lang::En, 1234.5, 2), "1234.50");
    }
}
