//! UTC calendar arithmetic for contracts, prices and reports: parsing the dates and times
//! written in contract and price files (and given as `since`/`until`), and the time buckets
//! reports group by.
//!
//! Everything is UTC and proleptic Gregorian, on integer nanoseconds since the Unix epoch (the
//! event `ts`). No floats, no time zone database.
//!
//! Why by hand and not a date crate (jiff, chrono, time): the report engines bucket millions of
//! events per second by day, ISO week and month, which is two divisions on an integer day
//! number here and a conversion through a civil datetime type there; and the accepted grammar
//! is exactly the one documented below, with errors worded for contract files. The arithmetic
//! is Hinnant's public-domain algorithms, and the tests check every function against jiff.
//! - A date `YYYY-MM-DD` means its midnight UTC.
//! - An RFC 3339 time `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` is exact to the nanosecond
//!   (more than nine fraction digits is an error). Without an offset it is read as UTC.
//!   A space instead of `T` is accepted, as RFC 3339 allows.
//! - Buckets: `day` (`2026-04-27`), `week` (ISO 8601: weeks start on Monday and belong to the
//!   ISO week-numbering year of their Thursday, labelled `2026-W18`), `month` (`2026-04`).

const NS_PER_SEC: i64 = 1_000_000_000;
pub const NS_PER_DAY: i64 = 86_400 * NS_PER_SEC;

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day number (Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// The day number of a timestamp (floor division: times before 1970 work too).
pub fn day_of(ts: i64) -> i64 {
    ts.div_euclid(NS_PER_DAY)
}

/// The month number (`year * 12 + month - 1`) of a day number.
pub fn month_of_day(day: i64) -> i64 {
    let (y, m, _) = civil_from_days(day);
    y * 12 + m as i64 - 1
}

/// The ISO week of a day number, as the day number of its Monday.
pub fn week_monday_of_day(day: i64) -> i64 {
    // 1970-01-01 was a Thursday: Monday-based weekday = (day + 3) mod 7.
    day - (day + 3).rem_euclid(7)
}

/// `2026-04-27`
pub fn format_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `2026-04`
pub fn format_month(month: i64) -> String {
    format!(
        "{:04}-{:02}",
        month.div_euclid(12),
        month.rem_euclid(12) + 1
    )
}

/// `2026-W18` for the week whose Monday is `monday` (ISO 8601 week-numbering year).
pub fn format_week(monday: i64) -> String {
    let thursday = monday + 3;
    let (iso_year, _, _) = civil_from_days(thursday);
    let jan1 = days_from_civil(iso_year, 1, 1);
    let week = (thursday - jan1) / 7 + 1;
    format!("{iso_year:04}-W{week:02}")
}

/// A timestamp as RFC 3339 UTC, with the fraction only when it is not zero.
pub fn format_ts(ts: i64) -> String {
    let day = day_of(ts);
    let rest = ts - day * NS_PER_DAY;
    let secs = rest / NS_PER_SEC;
    let nanos = rest % NS_PER_SEC;
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_owned()
    };
    format!("{}T{h:02}:{mi:02}:{s:02}{frac}Z", format_day(day))
}

/// Parses a UTC date (`2026-04-27`) or an RFC 3339 time to ns since the epoch.
/// The error is a sentence fragment for the caller to prefix with the field.
pub fn parse_instant(text: &str) -> Result<i64, String> {
    let bad = || {
        format!("{text:?} is not a date (YYYY-MM-DD) or an RFC 3339 time (YYYY-MM-DDTHH:MM:SSZ)")
    };
    let b = text.trim().as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let num = |s: &[u8]| -> Option<i64> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    let (y, m, d) = (
        num(&b[0..4]).ok_or_else(bad)?,
        num(&b[5..7]).ok_or_else(bad)? as u32,
        num(&b[8..10]).ok_or_else(bad)? as u32,
    );
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Err(format!("{text:?} is not a valid calendar date"));
    }
    let day = days_from_civil(y, m, d);
    let out_of_range = || {
        format!(
            "{text:?} is out of range: times are ns since 1970 in a signed 64-bit integer, \
             1677-09-21T00:12:43.145224192Z to 2262-04-11T23:47:16.854775807Z"
        )
    };
    if b.len() == 10 {
        return day.checked_mul(NS_PER_DAY).ok_or_else(out_of_range);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let (h, mi, s) = (
        num(&b[11..13]).ok_or_else(bad)?,
        num(&b[14..16]).ok_or_else(bad)?,
        num(&b[17..19]).ok_or_else(bad)?,
    );
    if h > 23 || mi > 59 || s > 59 {
        return Err(format!("{text:?} is not a valid time of day"));
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if i < b.len() && b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &b[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return Err(format!(
                "{text:?}: the fraction of a second must have 1 to 9 digits"
            ));
        }
        nanos = num(digits).ok_or_else(bad)? * 10i64.pow(9 - digits.len() as u32);
    }
    let offset_secs = match &b[i..] {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = num(&[*h1, *h2]).ok_or_else(bad)?;
            let om = num(&[*m1, *m2]).ok_or_else(bad)?;
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return Err(bad()),
    };
    let secs = day * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
    secs.checked_mul(NS_PER_SEC)
        .and_then(|v| v.checked_add(nanos))
        .ok_or_else(out_of_range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_jiff_on_days_weeks_months_and_instants() {
        use jiff::civil::Date;
        use jiff::Timestamp;
        let epoch = Date::constant(1970, 1, 1);
        for day in (-150_000..150_000).step_by(13) {
            let date = epoch.checked_add(jiff::Span::new().days(day)).unwrap();
            assert_eq!(format_day(day), date.to_string(), "day {day}");
            let iso = date.iso_week_date();
            assert_eq!(
                format_week(week_monday_of_day(day)),
                format!("{:04}-W{:02}", iso.year(), iso.week()),
                "week of {date}"
            );
            assert_eq!(
                format_month(month_of_day(day)),
                format!("{:04}-{:02}", date.year(), date.month())
            );
        }
        let mut ts: i64 = -4_000_000_000_000_000_123;
        while ts < 4_000_000_000_000_000_000 {
            let t = Timestamp::from_nanosecond(i128::from(ts)).unwrap();
            assert_eq!(format_ts(ts), t.to_string(), "ts {ts}");
            assert_eq!(parse_instant(&format_ts(ts)), Ok(ts));
            for (offset, secs) in [("+05:30", 19_800), ("-08:00", -28_800), ("+00:00", 0)] {
                let zone = jiff::tz::Offset::from_seconds(secs).unwrap().to_time_zone();
                let local = t.to_zoned(zone).datetime();
                let text = format!("{local}{offset}");
                assert_eq!(parse_instant(&text), Ok(ts), "{text}");
            }
            ts += 7_777_777_777_777_777;
        }
    }

    #[test]
    fn civil_round_trip_over_four_centuries() {
        for day in (-200_000..200_000).step_by(37) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(20_570), (2026, 4, 27));
    }

    #[test]
    fn parses_dates_and_rfc3339() {
        let day = days_from_civil(2026, 4, 27) * NS_PER_DAY;
        assert_eq!(parse_instant("2026-04-27"), Ok(day));
        assert_eq!(parse_instant("2026-04-27T00:00:00Z"), Ok(day));
        assert_eq!(parse_instant("2026-04-27 00:00:00"), Ok(day));
        assert_eq!(parse_instant("2026-04-27T02:00:00+02:00"), Ok(day));
        assert_eq!(parse_instant("2026-04-26T22:00:00-02:00"), Ok(day));
        assert_eq!(
            parse_instant("2026-04-27T00:00:00.5Z"),
            Ok(day + 500_000_000)
        );
        assert_eq!(parse_instant("2026-04-27T00:00:00.000000001Z"), Ok(day + 1));
        for bad in [
            "2026-02-30",
            "2025-02-29",
            "2026-13-01",
            "26-04-27",
            "2026-04-27T24:00:00Z",
            "2026-04-27T00:00:00.1234567891Z",
            "2026-04-27T00:00:00+0200",
            "yesterday",
            "",
        ] {
            assert!(parse_instant(bad).is_err(), "{bad}");
        }
        assert!(parse_instant("2024-02-29").is_ok());
    }

    #[test]
    fn buckets_and_labels() {
        let ts = parse_instant("2026-04-27T13:14:15.25Z").unwrap();
        let day = day_of(ts);
        assert_eq!(format_day(day), "2026-04-27");
        assert_eq!(format_month(month_of_day(day)), "2026-04");
        // 2026-04-27 is a Monday, ISO week 18.
        assert_eq!(week_monday_of_day(day), day);
        assert_eq!(format_week(week_monday_of_day(day)), "2026-W18");
        assert_eq!(format_week(week_monday_of_day(day + 6)), "2026-W18");
        assert_eq!(format_week(week_monday_of_day(day - 1)), "2026-W17");
        // ISO years: 2021-01-03 (a Sunday) is in 2020-W53; 2024-12-30 is in 2025-W01.
        let d = days_from_civil(2021, 1, 3);
        assert_eq!(format_week(week_monday_of_day(d)), "2020-W53");
        let d = days_from_civil(2024, 12, 30);
        assert_eq!(format_week(week_monday_of_day(d)), "2025-W01");
        assert_eq!(format_ts(ts), "2026-04-27T13:14:15.25Z");
        assert_eq!(day_of(-1), -1);
        assert_eq!(format_day(day_of(-1)), "1969-12-31");
    }
}
