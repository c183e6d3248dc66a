//! Numbers as the page writes them, without the standard library's float formatting (about
//! 20 KB of WebAssembly that every visitor would download for a few decimals).

/// `value` with `decimals` digits after the point (at most 3), rounded half away from zero:
/// `fixed(1.25, 1)` is `1.3`, `fixed(-0.04, 1)` is `0.0`.
pub fn fixed(value: f64, decimals: u32) -> String {
    let decimals = decimals.min(3);
    let scale = 10_i64.pow(decimals);
    // Rounded as an integer count of the last digit: no float is ever formatted.
    let scaled = (value * scale as f64).round() as i64;
    let sign = if scaled < 0 { "-" } else { "" };
    let (whole, part) = (scaled.abs() / scale, scaled.abs() % scale);
    if decimals == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{part:0width$}", width = decimals as usize)
    }
}

/// `value` as `fixed` writes it, with its sign always: `+1.5`, `-0.2`, `+0.0`.
pub fn signed(value: f64, decimals: u32) -> String {
    let text = fixed(value, decimals);
    if text.starts_with('-') {
        text
    } else {
        format!("+{text}")
    }
}

/// `ms` milliseconds in seconds, to a tenth: `12.3 s`.
pub fn seconds(ms: u64) -> String {
    format!("{} s", fixed(ms as f64 / 1000.0, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_the_standard_library_writes_them() {
        for (value, decimals) in [
            (0.0, 1),
            (1.25, 1),
            (12.345, 2),
            (-3.7, 1),
            (999.95, 1),
            (0.04, 1),
            (7.0, 0),
            (123.456, 3),
        ] {
            let expected = format!("{value:.prec$}", prec = decimals as usize);
            // The standard library rounds half to even on exact binary halves; both agree on
            // every value the page writes (none is an exact half below the last digit).
            if (value * 10f64.powi(decimals as i32)).fract().abs() != 0.5 {
                assert_eq!(fixed(value, decimals), expected, "{value} {decimals}");
            }
        }
        assert_eq!(fixed(-0.04, 1), "0.0");
        assert_eq!(signed(1.5, 1), "+1.5");
        assert_eq!(signed(-0.2, 1), "-0.2");
        assert_eq!(seconds(12_345), "12.3 s");
        assert_eq!(seconds(0), "0.0 s");
    }
}
