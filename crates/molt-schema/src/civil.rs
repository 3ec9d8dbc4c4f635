//! Calendar arithmetic shared by value comparison (verify) and typed exports (fetch's
//! Parquet): proleptic Gregorian dates, as PostgreSQL counts them (year 0 is 1 BC).

/// Days from 1970-01-01 to year `y`, month `m` (1–12), day `d`.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_as_postgresql_counts_them() {
        // Checked against PostgreSQL: SELECT 'date'::date - '1970-01-01'::date.
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
        assert_eq!(days_from_civil(-4712, 1, 1), -2_440_550);
        assert_eq!(days_from_civil(294_276, 12, 31), 106_762_939);
    }
}
